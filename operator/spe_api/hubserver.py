"""The name of a Workspace's JupyterHub server: one shared rule for the hub and the gateway.

A researcher's named server is one Workspace. Its name carries the namespace (the permit's) and
the Workspace, ``<namespace>.<workspace>``: a namespace is a DNS-1123 label (no ``.``), so the
first ``.`` splits it unambiguously. The hub's spawner names servers with
:func:`hub_server_name`; the egress gateway reads the server from the token's
``access:servers!server=<user>/<server name>`` scope and recovers the Workspace with
:func:`parse_hub_server_name`, so an export is filed under the workspace whose server made it.
"""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SERVER_NAME = re.compile(rf"^(?P<namespace>{_LABEL})\.(?P<workspace>{_LABEL})$")


def hub_server_name(namespace: str, workspace: str) -> str:
    """The named server of Workspace ``namespace/workspace``."""
    name = f"{namespace}.{workspace}"
    if not _SERVER_NAME.match(name):
        raise ValueError(f"{namespace!r}/{workspace!r} is not a namespace and Workspace name pair")
    return name


def parse_hub_server_name(server_name: str) -> tuple[str, str] | None:
    """``(namespace, workspace)`` of a server name made by :func:`hub_server_name`, else None."""
    m = _SERVER_NAME.match(server_name or "")
    return (m["namespace"], m["workspace"]) if m else None
