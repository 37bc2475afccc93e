#!/usr/bin/env bash
# The local storage of the dataset tests: rancher/local-path-provisioner, built from its Go
# module (pinned in tests/storage/local-path/go.mod, like kwok and kube-router in
# tests/controlplane/) into .cache/local-path-provisioner/<key>/ (idempotent; the key is the
# hash of go.mod and go.sum, so a version bump builds a new binary and a second run builds nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
MOD="tests/storage/local-path"
key="$(cat "$MOD/go.mod" "$MOD/go.sum" "$MOD/tools.go" | sha256sum | cut -c1-16)"
out=".cache/local-path-provisioner/$key"
[ -x "$out/local-path-provisioner" ] && exit 0
command -v go >/dev/null || { echo "local-path-provisioner.sh: Go is needed (make controlplane installs it)" >&2; exit 1; }
mkdir -p "$out.tmp"
( cd "$MOD" && GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -p "${SPE_GO_JOBS:-2}" -trimpath -ldflags "-s -w" -o "$OLDPWD/$out.tmp/local-path-provisioner" \
    github.com/rancher/local-path-provisioner )
"$out.tmp/local-path-provisioner" --version >/dev/null 2>&1 || "$out.tmp/local-path-provisioner" --help >/dev/null \
  || { echo "local-path-provisioner.sh: the built binary does not run" >&2; exit 1; }
( cd "$MOD" && go list -m -f '{{.Version}}' github.com/rancher/local-path-provisioner ) > "$out.tmp/VERSION"
rm -rf "$out" && mv "$out.tmp" "$out"
ln -sfn "$key" .cache/local-path-provisioner/current
echo "local-path-provisioner.sh: built $(cat "$out/VERSION") into $out"
