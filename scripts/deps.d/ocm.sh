#!/usr/bin/env bash
# Open Cluster Management for the federation tests (marker `federation`): one multi-call binary
# built from its pinned Go module, plus the CRDs of its API module, cached under .cache/ocm/<key>
# (tests/controlplane/build-ocm.sh; an unchanged module builds nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash tests/controlplane/build-ocm.sh
