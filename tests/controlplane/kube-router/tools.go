//go:build tools

// Package tools pins kube-router in this module; build.sh builds its upstream main package,
// github.com/cloudnativelabs/kube-router/v2/cmd/kube-router, with this module's go.sum. The
// real node runs it in firewall-only mode as its NetworkPolicy enforcer. v2.1.0 is the newest
// version the module proxy serves here.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
