#!/bin/sh
# Entrypoint of the notebook image. With the hub's credentials (JUPYTERHUB_API_TOKEN in the
# environment, or as files in $SPE_HUB_CREDENTIALS_DIR, the Secret the hub's spawner writes)
# it runs jupyterhub-singleuser, which authenticates every request against the hub. Without
# them it runs JupyterLab with a random token nobody knows: the server answers (its /api and
# the probes) but nobody can use it until the hub starts it properly.
#
# Either way the server reads its configuration only from $JUPYTER_CONFIG_DIR (the image's
# read-only /opt/spe/etc/jupyter: downloads closed, see jupyter/jupyter_server_config.py),
# never from the researcher's home, where a config file could reopen them.
set -eu
export JUPYTER_CONFIG_DIR="${JUPYTER_CONFIG_DIR:-/opt/spe/etc/jupyter}"
export JUPYTERHUB_DISABLE_USER_CONFIG=1 PYTHONNOUSERSITE=1
# JupyterLab's own settings and workspaces stay writable, in the home (its default is under
# the config directory, which is read-only here)
export JUPYTERLAB_SETTINGS_DIR="${JUPYTERLAB_SETTINGS_DIR:-$HOME/.jupyter/lab/user-settings}"
export JUPYTERLAB_WORKSPACES_DIR="${JUPYTERLAB_WORKSPACES_DIR:-$HOME/.jupyter/lab/workspaces}"

dir="${SPE_HUB_CREDENTIALS_DIR:-/run/secrets/spe-hub}"
if [ -z "${JUPYTERHUB_API_TOKEN:-}" ] && [ -r "$dir/JUPYTERHUB_API_TOKEN" ]; then
  for f in "$dir"/JUPYTERHUB_*; do
    [ -r "$f" ] && export "$(basename "$f")=$(cat "$f")"
  done
fi
if [ -n "${JUPYTERHUB_API_TOKEN:-}" ]; then
  # A workspace has no DNS: the hub's API is reached by the name the operator resolves in the
  # pod (SPE_HUB_API_URL, a hostAlias), whatever address the hub's spawner wrote.
  if [ -n "${SPE_HUB_API_URL:-}" ]; then
    old="${JUPYTERHUB_API_URL:-}"
    export JUPYTERHUB_API_URL="$SPE_HUB_API_URL"
    if [ -n "$old" ] && [ -n "${JUPYTERHUB_ACTIVITY_URL:-}" ]; then
      case "$JUPYTERHUB_ACTIVITY_URL" in
        "$old"*) export JUPYTERHUB_ACTIVITY_URL="$SPE_HUB_API_URL${JUPYTERHUB_ACTIVITY_URL#"$old"}" ;;
      esac
    fi
  fi
  exec jupyterhub-singleuser "$@"
fi
token="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
exec jupyter lab --no-browser --ServerApp.token="$token" --ServerApp.password='' "$@"
