#!/usr/bin/env bash
# `make demo` (after the set-up it does): the SPE installed with the node overlay on the local
# control plane's real node, a dataset ingested, her workspace; the URL and the demo users
# are printed, and Ctrl-C stops everything (devtools/spe_dev/demo.py).
# SPE_DEMO_ONCE=1 stops as soon as everything is up.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m spe_dev.demo "$@"
