#!/usr/bin/env bash
# Builds Open Cluster Management (open-cluster-management.io/ocm, pinned in ocm/go.mod) as one
# multi-call binary `ocm` (ocm/main.go): the hub's registration controller, work manager and
# placement controller, and the klusterlet agent (registration + work, "singleton" mode). Its own
# Go module because OCM pins other Kubernetes libraries (0.34) than the control plane (0.35).
# Also copies the CRDs the hub and the node need from OCM's API module
# (open-cluster-management.io/api, the version OCM's go.mod requires).
# Output: .cache/ocm/<key>/{bin/ocm,crds/hub,crds/node}, where <key> hashes the module files and
# this script, so an unchanged tree builds nothing.
#
# Environment: GO_BUILD_P (parallel compile jobs, default 2), SPE_OCM_CACHE (default
# <repo>/.cache/ocm).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${SPE_OCM_CACHE:-$ROOT/.cache/ocm}"
export GOTOOLCHAIN=local CGO_ENABLED=0
JOBS="${GO_BUILD_P:-2}"

log() { printf '[ocm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The key must match devtools/spe_dev/ocm.py (same files, same order, sha256 of the
# concatenation, first 16 hex digits).
KEY_FILES=(ocm/go.mod ocm/go.sum ocm/main.go build-ocm.sh)
key="$(cd "$HERE" && cat "${KEY_FILES[@]}" | sha256sum | cut -c1-16)"
OUT="$CACHE/$key"

if [[ -f "$OUT/complete" ]]; then
  log "up to date: $OUT/bin/ocm"
  exit 0
fi
command -v go >/dev/null || die "the Go toolchain is not on PATH (need Go >= 1.26, GOTOOLCHAIN=local)"

rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/bin" "$OUT.tmp/log" "$OUT.tmp/crds/hub" "$OUT.tmp/crds/node"
ocmver="$(cd "$HERE/ocm" && go list -m -f '{{.Version}}' open-cluster-management.io/ocm)" ||
  die "(cd $HERE/ocm && go list -m open-cluster-management.io/ocm) failed, see above"
log "building open-cluster-management.io/ocm $ocmver with $(go version | cut -d' ' -f3) (-p $JOBS)"
start=$SECONDS
ldflags="-s -w -X open-cluster-management.io/ocm/pkg/version.versionFromGit=$ocmver"
(cd "$HERE/ocm" && go build -v -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$OUT.tmp/bin/ocm" .) \
  >"$OUT.tmp/log/ocm.log" 2>&1 || { tail -n 40 "$OUT.tmp/log/ocm.log" >&2; die "go build failed"; }
log "built in $(( SECONDS - start ))s"

# CRDs from the API module, the set OCM's cluster-manager and klusterlet install (OCM's
# manifests/ lists the same files; the ClusterProfile CRD, for a feature left off, is not taken).
HUB_CRDS=(
  cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml
  cluster/v1beta2/0000_00_clusters.open-cluster-management.io_managedclustersets.crd.yaml
  cluster/v1beta2/0000_01_clusters.open-cluster-management.io_managedclustersetbindings.crd.yaml
  cluster/v1beta1/0000_02_clusters.open-cluster-management.io_placements.crd.yaml
  cluster/v1beta1/0000_03_clusters.open-cluster-management.io_placementdecisions.crd.yaml
  cluster/v1alpha1/0000_05_clusters.open-cluster-management.io_addonplacementscores.crd.yaml
  work/v1/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml
  work/v1alpha1/0000_00_work.open-cluster-management.io_manifestworkreplicasets.crd.yaml
  addon/v1alpha1/0000_00_addon.open-cluster-management.io_clustermanagementaddons.crd.yaml
  addon/v1alpha1/0000_01_addon.open-cluster-management.io_managedclusteraddons.crd.yaml
  addon/v1beta1/0000_02_addon.open-cluster-management.io_addondeploymentconfigs.crd.yaml
  addon/v1alpha1/0000_03_addon.open-cluster-management.io_addontemplates.crd.yaml
)
NODE_CRDS=(
  work/v1/0000_01_work.open-cluster-management.io_appliedmanifestworks.crd.yaml
  cluster/v1alpha1/0000_02_clusters.open-cluster-management.io_clusterclaims.crd.yaml
)
api="$(cd "$HERE/ocm" && go list -m -f '{{.Dir}}' open-cluster-management.io/api)" ||
  die "(cd $HERE/ocm && go list -m open-cluster-management.io/api) failed"
for f in "${HUB_CRDS[@]}"; do install -m 0644 "$api/$f" "$OUT.tmp/crds/hub/" || die "missing $api/$f"; done
for f in "${NODE_CRDS[@]}"; do install -m 0644 "$api/$f" "$OUT.tmp/crds/node/" || die "missing $api/$f"; done

"$OUT.tmp/bin/ocm" klusterlet-agent --help >/dev/null || die "built ocm does not run"
printf '%s\n' "ocm=$ocmver" "api=$(cd "$HERE/ocm" && go list -m -f '{{.Version}}' open-cluster-management.io/api)" \
  "build_seconds=$(( SECONDS - start ))" >"$OUT.tmp/versions"
touch "$OUT.tmp/complete"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
for stale in "$CACHE"/*; do
  [[ "$stale" != "$OUT" && "$(basename "$stale")" =~ ^[0-9a-f]{16}(\.tmp)?$ ]] && rm -rf "$stale"
done
log "done: $OUT ($(tr '\n' ' ' <"$OUT/versions"))"
