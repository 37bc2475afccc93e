#!/usr/bin/env bash
# configurable-http-proxy (npm) for the real JupyterHub the tests start (idempotent).
# Installed under .cache/chp/; the test fixture puts .cache/chp/node_modules/.bin on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHP_VERSION="${CHP_VERSION:-5.3.0}"
dest=".cache/chp"
if [ -x "$dest/node_modules/.bin/configurable-http-proxy" ] \
   && grep -q "\"version\": \"$CHP_VERSION\"" "$dest/node_modules/configurable-http-proxy/package.json" 2>/dev/null; then
  exit 0
fi
command -v npm >/dev/null || { echo "configurable-http-proxy.sh: npm is needed" >&2; exit 1; }
mkdir -p "$dest"
npm install --silent --no-audit --no-fund --prefix "$dest" "configurable-http-proxy@$CHP_VERSION" >/dev/null
echo "configurable-http-proxy.sh: installed in $dest"
