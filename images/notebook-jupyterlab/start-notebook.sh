#!/bin/sh
# Entrypoint of the notebook image. With the hub's credentials (JUPYTERHUB_API_TOKEN in the
# environment, or as files in $SPE_HUB_CREDENTIALS_DIR, the Secret the hub's spawner writes)
# it runs jupyterhub-singleuser, which authenticates every request against the hub. Without
# them it runs JupyterLab with a random token nobody knows: the server answers (its /api and
# the probes) but nobody can use it until the hub starts it properly.
set -eu
dir="${SPE_HUB_CREDENTIALS_DIR:-/run/secrets/spe-hub}"
if [ -z "${JUPYTERHUB_API_TOKEN:-}" ] && [ -r "$dir/JUPYTERHUB_API_TOKEN" ]; then
  for f in "$dir"/JUPYTERHUB_*; do
    [ -r "$f" ] && export "$(basename "$f")=$(cat "$f")"
  done
fi
if [ -n "${JUPYTERHUB_API_TOKEN:-}" ]; then
  exec jupyterhub-singleuser "$@"
fi
token="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
exec jupyter lab --no-browser --ServerApp.token="$token" --ServerApp.password='' "$@"
