"""The Workspace's hub Secret: the server's JupyterHub credentials, written by the spawner.

One owner: the hub's spawner creates it on every start (the hub issues a new API token per
start), replaces it on a restart and deletes it on stop; the operator only mounts it
(``optional: true``) at ``/run/secrets/spe-hub`` in the server's pod, where
``images/notebook-jupyterlab/start-notebook.sh`` turns its ``JUPYTERHUB_*`` files into the
environment of ``jupyterhub-singleuser``. The Workspace owns it, so deleting the Workspace
removes it. Only ``JUPYTERHUB_*`` variables go in: nothing of the hub's own environment.
"""

from __future__ import annotations

from typing import Any

from spe_api import API_VERSION

# Same rule as spe_operator.workspaces.names.hub_secret_name (components share no code but spe_api).
HUB_SECRET_SUFFIX = "-hub"
CREDENTIAL_PREFIX = "JUPYTERHUB_"


def hub_secret_name(workspace: str) -> str:
    return f"{workspace}{HUB_SECRET_SUFFIX}"


def credentials(env: dict[str, str]) -> dict[str, str]:
    """The server's hub credentials out of the spawner's environment."""
    return {k: str(v) for k, v in sorted(env.items()) if k.startswith(CREDENTIAL_PREFIX) and v is not None}


def build_hub_secret(namespace: str, workspace: str, workspace_uid: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": hub_secret_name(workspace), "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "spe", "app.kubernetes.io/component": "hub"},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Workspace", "name": workspace,
                                 "uid": workspace_uid, "controller": False, "blockOwnerDeletion": False}],
        },
        "stringData": credentials(env),
    }
