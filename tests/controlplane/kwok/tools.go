//go:build tools

// Package tools pins sigs.k8s.io/kwok in this module; build.sh builds its upstream main
// package, sigs.k8s.io/kwok/cmd/kwok, with this module's go.sum.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
