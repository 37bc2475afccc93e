//go:build tools

// Package tools pins github.com/rancher/local-path-provisioner in this module;
// scripts/deps.d/local-path-provisioner.sh builds its upstream main package with this go.sum.
package tools

import _ "github.com/rancher/local-path-provisioner"
