"""The desired children of one Workspace, adopted (labels + owner references): the one place
that decides what should exist. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spe_api import Tool, Workspace

from ..children import adopt
from ..settings import SpeSettings
from . import names
from .datasets import DatasetMount, build_dataset_claim, build_dataset_volume
from .service import build_service
from .statefulset import ServiceAddress, build_statefulset


@dataclass
class DesiredChildren:
    claims: list[dict[str, Any]] = field(default_factory=list)        # home, outputs (owned by the Workspace)
    dataset_volumes: list[dict[str, Any]] = field(default_factory=list)  # PV then PVC per dataset (owned by the permit)
    statefulset: dict[str, Any] | None = None
    service: dict[str, Any] | None = None

    def in_order(self) -> list[dict[str, Any]]:
        """Volumes first (the pod needs them), then the server and its Service."""
        out = [*self.claims, *self.dataset_volumes]
        if self.statefulset is not None:
            out.append(self.statefulset)
        if self.service is not None:
            out.append(self.service)
        return out


def desired_children(ws_body: Mapping[str, Any], ws: Workspace, *, tool: Tool | None,
                     mounts: tuple[DatasetMount, ...], claims: list[dict[str, Any]],
                     permit_body: Mapping[str, Any] | None, settings: SpeSettings, replicas: int,
                     addresses: tuple[ServiceAddress, ...] = ()) -> DesiredChildren:
    permit, name = ws.spec.permit, ws.name

    def own(child: dict[str, Any], component: str) -> dict[str, Any]:
        return adopt(child, ws_body, component=component, permit=permit, workspace=name)

    out = DesiredChildren(claims=[own(c, names.COMPONENT_VOLUME) for c in claims])
    if permit_body is not None:
        for mount in mounts:
            for child in (build_dataset_volume(mount, ws.namespace or ""), build_dataset_claim(mount, ws.namespace or "")):
                out.dataset_volumes.append(adopt(child, permit_body, component=names.COMPONENT_DATASET_CLAIM,
                                                 permit=permit))
    if tool is not None:
        out.statefulset = own(build_statefulset(ws, tool, mounts, settings, replicas=replicas, addresses=addresses),
                              names.COMPONENT_NOTEBOOK)
    out.service = own(build_service(ws, settings), names.COMPONENT_NOTEBOOK)
    return out
