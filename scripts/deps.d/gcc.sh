#!/usr/bin/env bash
# A C compiler for the gpu tests' fake libnvidia-ml.so.1 (tests/gpu/fake_nvml/, built into
# .cache/fake-nvml/ by the tests themselves). Idempotent: nothing to do where gcc exists.
set -euo pipefail
command -v gcc >/dev/null && exit 0
if command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
fi
command -v gcc >/dev/null || { echo "gcc.sh: install gcc (the gpu tests build a small C library)" >&2; exit 1; }
echo "gcc.sh: installed gcc"
