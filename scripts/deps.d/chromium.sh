#!/usr/bin/env bash
# Debian's Chromium for the headless browser tests (driven by Playwright for Python with
# executable_path=/usr/bin/chromium; Playwright's own browser download is never used).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium.sh: /usr/bin/chromium missing; install Debian's 'chromium' package as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
echo "chromium.sh: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
