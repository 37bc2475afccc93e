"""Node labels for the GPU model and count, added where missing (pure).

NVIDIA GPU Feature Discovery (GFD) owns ``nvidia.com/gpu.*`` where it is installed: on a node
it labelled (``nvidia.com/gfd.timestamp``) the agent writes nothing, and a label that exists
and is not the agent's own (by ``metadata.managedFields``) is never overwritten.
"""

from __future__ import annotations

import re
from typing import Any

from .nvml import Inventory

PRODUCT_LABEL = "nvidia.com/gpu.product"
COUNT_LABEL = "nvidia.com/gpu.count"
GFD_TIMESTAMP = "nvidia.com/gfd.timestamp"
FIELD_MANAGER = "spe-gpu-agent"


def product_value(model: str) -> str:
    """The model as GFD writes it: "NVIDIA L40S" -> "NVIDIA-L40S" (a valid label value)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.strip()).strip("-_.")
    return value[:63].rstrip("-_.") or "unknown"


def owned_labels(node: dict[str, Any], manager: str = FIELD_MANAGER) -> set[str]:
    """The labels ``manager`` owns on the node, from its managedFields."""
    out: set[str] = set()
    for entry in (node.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != manager:
            continue
        labels = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:labels") or {}
        out.update(k[2:] for k in labels if k.startswith("f:"))
    return out


def wanted_labels(inventory: Inventory) -> dict[str, str]:
    models = [g.model for g in inventory.gpus if g.model]
    if not inventory.gpus:
        return {}
    out = {COUNT_LABEL: str(len(inventory.gpus))}
    if models:
        out[PRODUCT_LABEL] = product_value(models[0])
    return out


def label_apply(node: dict[str, Any], inventory: Inventory, manager: str = FIELD_MANAGER) -> dict[str, Any] | None:
    """The server-side apply body for the node's labels, or None when there is nothing to do."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    if GFD_TIMESTAMP in labels:
        return None
    mine = owned_labels(node, manager)
    wanted = {k: v for k, v in wanted_labels(inventory).items() if k not in labels or k in mine}
    if all(labels.get(k) == v for k, v in wanted.items()) and set(wanted) >= mine & {PRODUCT_LABEL, COUNT_LABEL}:
        return None
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node["metadata"]["name"], "labels": wanted}}
