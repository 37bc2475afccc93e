#!/usr/bin/env bash
# Builds the local control plane of the test suite from published Go modules:
#   kube  - one multi-call binary: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#           kubelet, kube-proxy (the last two run spe-dev's real node)
#   etcd  - etcd 3.6 (go.etcd.io/etcd/server/v3)
#   kwok  - sigs.k8s.io/kwok (fake nodes)
#   kube-router - github.com/cloudnativelabs/kube-router/v2 (NetworkPolicy on the real node)
# Output: .cache/controlplane/<key>/bin/, where <key> hashes the module files and this script,
# so an unchanged tree builds nothing. Go's own build and module caches stay in their default
# places, so a rebuild on the same machine after a change is warm.
#
# Environment: GO_BUILD_P (parallel compile jobs, default 2), SPE_CONTROLPLANE_CACHE (default
# <repo>/.cache/controlplane).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${SPE_CONTROLPLANE_CACHE:-$ROOT/.cache/controlplane}"
export GOTOOLCHAIN=local CGO_ENABLED=0
JOBS="${GO_BUILD_P:-2}"

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The key must match devtools/spe_dev/settings.py (same files, same order, sha256 of the
# concatenation, first 16 hex digits).
KEY_FILES=(
  kube/go.mod kube/go.sum kube/main.go
  etcd/go.mod etcd/go.sum etcd/main.go
  kwok/go.mod kwok/go.sum kwok/tools.go
  kube-router/go.mod kube-router/go.sum kube-router/tools.go
  build.sh
)
key="$(cd "$HERE" && cat "${KEY_FILES[@]}" | sha256sum | cut -c1-16)"
OUT="$CACHE/$key"
BIN="$OUT/bin"

if [[ -f "$OUT/complete" ]]; then
  log "up to date: $BIN"
  exit 0
fi

command -v go >/dev/null || die "the Go toolchain is not on PATH (need Go >= 1.26, GOTOOLCHAIN=local)"
log "building into $BIN with $(go version | cut -d' ' -f3) (-p $JOBS); a cold build takes a long while"

# run_build NAME DIR LOG go build ARGS... : runs a go build in DIR, prints progress every
# 30 seconds (packages compiled so far), and on failure prints the command and its error.
run_build() {
  local name="$1" dir="$2" logf="$3"; shift 3
  local start=$SECONDS last=$SECONDS pid rc
  local shown; shown="$(printf ' %q' "$@")"
  log "$name: (cd ${dir#"$ROOT"/} &&$shown)"
  (cd "$dir" && exec "$@") >"$logf" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - last >= 30 )); then
      last=$SECONDS
      log "$name: $(( SECONDS - start ))s, $(grep -vc '^#' "$logf" || true) packages compiled"
    fi
    sleep 1
  done
  rc=0; wait "$pid" || rc=$?
  if (( rc != 0 )); then
    log "$name: FAILED (exit $rc) after $(( SECONDS - start ))s; command was:"
    log "  (cd $dir &&$shown)"
    log "last lines of $logf:"
    tail -n 40 "$logf" >&2
    exit "$rc"
  fi
  log "$name: built in $(( SECONDS - start ))s"
}

rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/bin" "$OUT.tmp/log"
TMPBIN="$OUT.tmp/bin"

# Version stamps, so `kubectl version` reports the real release. The build date is the module's
# publication time, which keeps the binary reproducible for one key.
kver="$(cd "$HERE/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)" ||
  die "(cd $HERE/kube && go list -m k8s.io/kubernetes) failed, see above"
kdate="$(cd "$HERE/kube" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)" ||
  die "(cd $HERE/kube && go list -m k8s.io/kubernetes) failed, see above"
[[ "$kver" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected k8s.io/kubernetes version '$kver'"
kmajor="${BASH_REMATCH[1]}" kminor="${BASH_REMATCH[2]}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$kmajor -X $pkg.gitMinor=$kminor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$kdate"
done

run_build kube "$HERE/kube" "$OUT.tmp/log/kube.log" \
  go build -v -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$TMPBIN/kube" .
for name in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
  ln -sf kube "$TMPBIN/$name"
done

run_build etcd "$HERE/etcd" "$OUT.tmp/log/etcd.log" \
  go build -v -p "$JOBS" -trimpath -ldflags "-s -w" -o "$TMPBIN/etcd" .

run_build kwok "$HERE/kwok" "$OUT.tmp/log/kwok.log" \
  go build -v -p "$JOBS" -trimpath -ldflags "-s -w" -o "$TMPBIN/kwok" sigs.k8s.io/kwok/cmd/kwok

run_build kube-router "$HERE/kube-router" "$OUT.tmp/log/kube-router.log" \
  go build -v -p "$JOBS" -trimpath -ldflags "-s -w" -o "$TMPBIN/kube-router" \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router

# Smoke-check what was built before declaring it complete.
"$TMPBIN/kubectl" version --client >/dev/null || die "built kubectl does not run"
"$TMPBIN/etcd" --version >/dev/null || die "built etcd does not run"
"$TMPBIN/kwok" --version >/dev/null 2>&1 || "$TMPBIN/kwok" --help >/dev/null || die "built kwok does not run"
"$TMPBIN/kubelet" --version >/dev/null || die "built kubelet does not run"
"$TMPBIN/kube-proxy" --version >/dev/null || die "built kube-proxy does not run"
"$TMPBIN/kube-router" --version >/dev/null 2>&1 || die "built kube-router does not run"

printf '%s\n' "kubernetes=$kver" "etcd=$(cd "$HERE/etcd" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" \
  "kwok=$(cd "$HERE/kwok" && go list -m -f '{{.Version}}' sigs.k8s.io/kwok)" \
  "kube-router=$(cd "$HERE/kube-router" && go list -m -f '{{.Version}}' github.com/cloudnativelabs/kube-router/v2)" \
  >"$OUT.tmp/versions"
touch "$OUT.tmp/complete"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
# Drop the outputs of earlier keys (about 200 MiB each). A cluster still running from them keeps
# working: the kernel keeps an unlinked executable until its processes exit.
for stale in "$CACHE"/*; do
  [[ "$stale" != "$OUT" && "$(basename "$stale")" =~ ^[0-9a-f]{16}(\.tmp)?$ ]] && rm -rf "$stale"
done
log "done: $BIN ($(tr '\n' ' ' <"$OUT/versions"))"
