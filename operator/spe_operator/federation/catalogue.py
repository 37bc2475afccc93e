"""What a node's datasets tell central, and the catalogue central keeps of them (pure).

Descriptive metadata only, never data: for each Dataset its name, phase, modalities, the
ingest counts (patients, studies, series, instances, accepted, rejected, quarantined), the k
reached and the signed manifest's digest. Nothing patient-level, no file names, no paths, no
rejection details, no keys: ``CATALOGUE_FIELDS`` is the whole list, enforced twice -- the node
builds its export from it, and central drops any entry that carries anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..children import LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY
from . import CATALOGUE_CONFIGMAP, COMPONENT, LABEL_NODE

COUNT_FIELDS = ("patients", "studies", "series", "instances", "accepted", "rejected", "quarantined")
CATALOGUE_FIELDS = ("name", "phase", "modalities", "counts", "kAnonymity", "manifestDigest")
CATALOGUE_PREFIX = "spe-catalogue-"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogueCounts(_Strict):
    patients: int = Field(0, ge=0)
    studies: int = Field(0, ge=0)
    series: int = Field(0, ge=0)
    instances: int = Field(0, ge=0)
    accepted: int = Field(0, ge=0)
    rejected: int = Field(0, ge=0)
    quarantined: int = Field(0, ge=0)


class CatalogueEntry(_Strict):
    """One dataset as the catalogue shows it; anything else is refused (extra="forbid")."""

    name: str = Field(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    phase: str | None = Field(None, max_length=32)
    modalities: list[str] = Field(default_factory=list, max_length=32)
    counts: CatalogueCounts | None = None
    kAnonymity: int | None = Field(None, ge=0)
    manifestDigest: str | None = Field(None, pattern=r"^sha256:[a-f0-9]{64}$")


def dataset_entry(dataset: Mapping[str, Any]) -> dict[str, Any]:
    """The catalogue entry of one Dataset (as the model defines its spec and status)."""
    spec = dataset.get("spec") or {}
    status = dataset.get("status") or {}
    counts = status.get("counts")
    entry = {
        "name": dataset["metadata"]["name"],
        "phase": status.get("phase"),
        "modalities": list(spec.get("modalities") or []),
        "counts": {k: int(counts.get(k) or 0) for k in COUNT_FIELDS} if counts else None,
        "kAnonymity": status.get("kAnonymity"),
        "manifestDigest": status.get("manifestDigest"),
    }
    return CatalogueEntry.model_validate(entry).model_dump(mode="json")


def export_configmap(datasets: Iterable[Mapping[str, Any]], namespace: str) -> dict[str, Any]:
    """The node's ConfigMap that OCM reads (read-only) and returns to central as feedback."""
    entries = sorted((dataset_entry(d) for d in datasets), key=lambda e: e["name"])
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CATALOGUE_CONFIGMAP, "namespace": namespace,
                         "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: COMPONENT}},
            "data": {"datasets": json.dumps(entries, sort_keys=True, separators=(",", ":"))}}


def parse_entries(raw: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Entries from the node's feedback, each checked against the allowlist; and what was refused."""
    if not raw:
        return [], []
    try:
        items = json.loads(raw)
    except ValueError:
        return [], ["the datasets feedback is not JSON"]
    if not isinstance(items, list):
        return [], ["the datasets feedback is not a list"]
    entries, refused = [], []
    for item in items:
        try:
            entries.append(CatalogueEntry.model_validate(item).model_dump(mode="json"))
        except ValidationError as err:
            name = item.get("name") if isinstance(item, dict) else None
            refused.append(f"{name or '?'}: {err.errors()[0]['msg']} ({'.'.join(map(str, err.errors()[0]['loc']))})")
    return entries, refused


def parse_checkpoint(raw: str | None) -> dict[str, Any] | None:
    """The node's published audit checkpoint ({seq, hash, time, signature, keyId, log}), or None."""
    if not raw:
        return None
    try:
        cp = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(cp, dict) or not isinstance(cp.get("seq"), int) or not isinstance(cp.get("hash"), str):
        return None
    return {k: cp[k] for k in ("seq", "hash", "time", "signature", "keyId", "log") if k in cp}


def central_catalogue(node: str, namespace: str, entries: list[dict[str, Any]], refused: list[str],
                      checkpoint: dict[str, Any] | None, observed_at: datetime) -> dict[str, Any]:
    """Central's read-only record of one node: its datasets' metadata and its last audit
    checkpoint (``checkpoint.json``, the same shape ``spe-audit verify --checkpoint-file`` reads)."""
    data = {"node": node,
            "datasets.json": json.dumps(entries, sort_keys=True, indent=1),
            "observedAt": observed_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if refused:
        data["refused"] = "\n".join(refused)
    if checkpoint is not None:
        data["checkpoint.json"] = json.dumps(checkpoint, sort_keys=True)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{CATALOGUE_PREFIX}{node}", "namespace": namespace,
                         "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: COMPONENT, LABEL_NODE: node}},
            "data": data}
