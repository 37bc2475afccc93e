"""The server's Service: headless, so ``<workspace>.<namespace>.svc`` resolves to the ready pod
only (no virtual IP, nothing answers while the server is stopped or not ready)."""

from __future__ import annotations

from typing import Any

from spe_api import Workspace

from ..settings import SpeSettings
from . import names


def build_service(ws: Workspace, settings: SpeSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.service_name(ws.name), "namespace": ws.namespace},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": names.selector_labels(ws.name),
            "ports": [{"name": names.PORT_NAME, "port": settings.notebook_port,
                       "targetPort": names.PORT_NAME, "protocol": "TCP"}],
        },
    }
