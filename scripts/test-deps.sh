#!/usr/bin/env bash
# Everything the test suite needs that comes from the package registries, installed and built
# idempotently under .cache/, in two lanes at once:
#   go:       the Go builds (the control plane, Open Cluster Management, the storage
#             provisioner): compiling, bound by the CPU;
#   packages: the other scripts/deps.d/ steps (Debian packages, Keycloak from Maven Central,
#             configurable-http-proxy from npm, checkov from PyPI), then the images, which need
#             node.sh's mmdebstrap and buildah: mostly downloads, unpacking and compression.
# On a cold machine each lane takes minutes; side by side they overlap where one after the other
# they added up. Both still want the CPU (the images' pip installs and compression too), so on two
# cores the gain is a tenth: a cold set-up took 22 min 31 s instead of 25 min 19 s (README,
# Figures). Only the packages lane calls apt-get, so the two never wait on dpkg's lock.
# Each lane's output goes to the terminal as it comes (every step prefixes its own lines) and to
# .cache/test-deps/<lane>.log; a lane that fails does not stop the other half-way (an apt-get
# killed mid-install leaves dpkg to repair), and the script exits non-zero naming it.
# Usage: scripts/test-deps.sh [STEP...]: only these scripts/deps.d/ steps (names without .sh; the
# control plane and the images always), as `make demo` asks for its four; none: all of them.
# Environment: SPE_DEPS_SERIAL=1 runs the lanes one after the other (to read one lane's output
# alone, or on a machine too small to compile and unpack at once).
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=.cache/test-deps
mkdir -p "$LOGS"
log() { printf '[test-deps] %s\n' "$*" >&2; }

if (( $# )); then
  wanted=()
  for name in "$@"; do
    [[ -f "scripts/deps.d/$name.sh" ]] || { log "no step scripts/deps.d/$name.sh (the steps: $(cd scripts/deps.d && ls *.sh | sed 's/\.sh$//' | tr '\n' ' '))"; exit 2; }
    wanted+=("scripts/deps.d/$name.sh")
  done
else
  wanted=(scripts/deps.d/*.sh)
fi
GO_BUILDS=(scripts/deps.d/ocm.sh scripts/deps.d/local-path-provisioner.sh)
GO_STEPS=(tests/controlplane/build.sh)
PACKAGE_STEPS=()
for step in "${wanted[@]}"; do
  if [[ " ${GO_BUILDS[*]} " == *" $step "* ]]; then GO_STEPS+=("$step"); else PACKAGE_STEPS+=("$step"); fi
done
PACKAGE_STEPS+=(images/build-local.sh)

# lane NAME STEP...: runs the steps in order, stops at the first that fails; prints each step's time.
lane() {
  local name="$1" start=$SECONDS t step; shift
  for step in "$@"; do
    t=$SECONDS
    bash "$step" || { log "$name: $step FAILED after $(( SECONDS - t ))s"; return 1; }
    (( SECONDS - t < 5 )) || log "$name: $step took $(( SECONDS - t ))s"
  done
  log "$name lane done in $(( SECONDS - start ))s"
}

start=$SECONDS
if [[ "${SPE_DEPS_SERIAL:-0}" == 1 ]]; then
  lane go "${GO_STEPS[@]}" 2>&1 | tee "$LOGS/go.log"
  lane packages "${PACKAGE_STEPS[@]}" 2>&1 | tee "$LOGS/packages.log"
  exit 0
fi

# With pipefail, waiting on a background pipeline gives the lane's status, not tee's.
lane go "${GO_STEPS[@]}" 2>&1 | tee "$LOGS/go.log" &
go_pid=$!
lane packages "${PACKAGE_STEPS[@]}" 2>&1 | tee "$LOGS/packages.log" &
packages_pid=$!
failed=()
wait "$go_pid" || failed+=(go)
wait "$packages_pid" || failed+=(packages)
if (( ${#failed[@]} )); then
  for name in "${failed[@]}"; do log "the $name lane failed: its whole output is in $LOGS/$name.log"; done
  exit 1
fi
log "all set up in $(( SECONDS - start ))s"
