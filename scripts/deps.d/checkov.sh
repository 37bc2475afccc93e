#!/usr/bin/env bash
# checkov (Kubernetes manifest checks) in its OWN virtual environment under .cache/checkov-venv:
# it pins many dependencies that must not meet the project's .venv. Idempotent.
# The workspace tests run .cache/checkov-venv/bin/checkov on the rendered notebook pod.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
dest=".cache/checkov-venv"
if [ -x "$dest/bin/checkov" ] && [ "$("$dest/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" = "$CHECKOV_VERSION" ]; then
  exit 0
fi
# checkov supports CPython 3.9-3.12; prefer 3.12, fall back to 3.11.
py=""
for candidate in python3.12 python3.11; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import venv' 2>/dev/null; then py="$candidate"; break; fi
done
[ -n "$py" ] || { echo "checkov.sh: python3.12 or python3.11 is needed" >&2; exit 1; }
rm -rf "$dest"
"$py" -m venv "$dest"
"$dest/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null
"$dest/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >/dev/null
"$dest/bin/checkov" --version >/dev/null
echo "checkov.sh: installed checkov $CHECKOV_VERSION in $dest"
