#!/usr/bin/env bash
# Installs the non-Python programs that some test areas need (idempotent, cached under .cache/).
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/deps.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
