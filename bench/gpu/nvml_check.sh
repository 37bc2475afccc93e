#!/usr/bin/env bash
# Device check of spe-gpu-agent on a machine with a real NVIDIA GPU: runs the agent once against
# the driver's NVML (no cluster) and prints the inventory (model, UUID, memory, MIG mode and
# instances, processes) and utilisation samples, then the library it loaded.
#
#   bash bench/gpu/nvml_check.sh            # 5 samples, 1 s apart
#   SAMPLES=10 bash bench/gpu/nvml_check.sh
#
# It never uses the tests' fake library: LD_LIBRARY_PATH and FAKE_NVML_SCENARIO are cleared, and
# it fails when the loaded libnvidia-ml is not the driver's. Exit 0: measured; 3: no usable NVML.
set -euo pipefail
cd "$(dirname "$0")/../.."
agent=".venv/bin/spe-gpu-agent"
[ -x "$agent" ] || { echo "nvml_check: $agent missing: run 'make venv' first" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "nvml_check: (no nvidia-smi on PATH)"
out="$(env -u LD_LIBRARY_PATH -u FAKE_NVML_SCENARIO "$agent" --once --no-kube --samples "${SAMPLES:-5}")" || rc=$?
echo "$out"
rc="${rc:-0}"
if [ "$rc" -ne 0 ]; then
  echo "nvml_check: no usable NVML on this machine (exit $rc)" >&2
  exit "$rc"
fi
lib="$(printf '%s' "$out" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin).get("library") or "")')"
case "$lib" in
  *fake-nvml*|"") echo "nvml_check: loaded '$lib', not the driver's libnvidia-ml" >&2; exit 1 ;;
esac
echo "nvml_check: real NVML at $lib"
