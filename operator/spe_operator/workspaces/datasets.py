"""Read-only access to a Dataset's volume from a permit's namespace.

A Dataset is cluster-scoped; its de-identified data live on one PersistentVolume (named in
``status.volumeName``, bound to the ingest's claim in the operator's namespace). A pod can only
mount a claim of its own namespace, and one PersistentVolume binds exactly one claim, so each
permit namespace gets its own pair pointing at the same backing source:

* a PersistentVolume ``ds-<namespace>-<dataset>``: the source PV's volume source (CSI handle,
  NFS export, ...) copied with ``readOnly: true`` where the source type has that field,
  ``ReadOnlyMany``, reclaim policy ``Retain`` (deleting it never touches the data), no storage
  class (never provisioned), pre-bound by ``claimRef`` to
* a PersistentVolumeClaim ``ds-<dataset>`` in the namespace, ``ReadOnlyMany``, ``volumeName``
  set, so nothing else can bind either.

The pod mounts the claim with ``readOnly: true`` on the volume and on the mount: read-only at
three levels. Both objects are owned by the DataPermit (a cluster-scoped owner may own a
namespaced and a cluster-scoped object; a namespaced Workspace may not own a PV), so they go
when the permit goes. CSI note: the copies share the source's ``volumeHandle``; shared-file
drivers (NFS, CephFS, SMB CSI) support several read-only PVs per handle.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from spe_api import Dataset, DatasetPhase, Reason
from spe_api.reasons import WorkspaceMessage as M

from . import names

# PersistentVolume source types that may be copied: the kinds datasets live on. The operator's
# guardrail (manifests/base/operator-guardrails.yaml, spe-operator-dataset-volumes) admits no
# other, and hostPath/local only under the directories its ConfigMap lists.
VOLUME_SOURCE_KEYS = frozenset({"csi", "nfs", "cephfs", "hostPath", "local"})
# Those of them with a ``readOnly`` field (hostPath and local have none: the mount enforces it).
READ_ONLY_CAPABLE = frozenset({"csi", "nfs", "cephfs"})
READ_ONLY_ACCESS_MODES = ["ReadOnlyMany"]


@dataclass(frozen=True)
class DatasetMount:
    """A dataset the workspace mounts: its name and the source PersistentVolume."""

    name: str
    source_volume: dict[str, Any]


@dataclass(frozen=True)
class DatasetVerdict:
    ok: bool
    reason: str
    message: str
    mounts: tuple[DatasetMount, ...] = ()


def evaluate_datasets(requested: list[str], datasets: dict[str, Dataset | None],
                      sources: dict[str, dict[str, Any] | None],
                      errors: dict[str, str] | None = None) -> DatasetVerdict:
    """DatasetsReady: every requested dataset exists, is Ready and has a known volume.

    ``datasets`` maps each requested name to its Dataset (None: missing); ``sources`` maps it
    to the source PersistentVolume (None: not found); ``errors`` says why a source could not
    be read, where it could not."""
    mounts: list[DatasetMount] = []
    for name in requested:
        ds = datasets.get(name)
        if ds is None:
            return DatasetVerdict(False, Reason.DATASET_NOT_FOUND, M.DATASET_NOT_FOUND.format(dataset=name))
        phase = ds.status.phase
        if phase != DatasetPhase.READY:
            return DatasetVerdict(False, Reason.DATASET_NOT_READY, M.DATASET_NOT_READY.format(
                dataset=name, phase=phase.value if phase else "not yet ingested"))
        source = sources.get(name)
        if source is None:
            detail = (errors or {}).get(name) or (
                f"PersistentVolume {ds.status.volume_name!r} not found" if ds.status.volume_name
                else "no status.volumeName")
            return DatasetVerdict(False, Reason.DATASET_VOLUME_MISSING, M.DATASET_VOLUME_MISSING.format(
                dataset=name, detail=detail))
        kinds = sorted(k for k in (source.get("spec") or {}) if k in VOLUME_SOURCE_KEYS)
        if len(kinds) != 1:
            return DatasetVerdict(False, Reason.DATASET_VOLUME_MISSING, M.DATASET_VOLUME_MISSING.format(
                dataset=name, detail=f"PersistentVolume {source['metadata'].get('name')!r} is not of a kind "
                                     f"workspaces mount ({', '.join(sorted(VOLUME_SOURCE_KEYS))})"))
        mounts.append(DatasetMount(name, source))
    if not mounts:
        return DatasetVerdict(True, Reason.DATASETS_READY, M.NO_DATASETS)
    listing = ", ".join(names.dataset_mount_path(m.name) for m in mounts)
    return DatasetVerdict(True, Reason.DATASETS_READY, M.DATASETS_READY.format(mounts=listing), tuple(mounts))


def build_dataset_volume(mount: DatasetMount, namespace: str) -> dict[str, Any]:
    """The read-only PersistentVolume for ``namespace``, pre-bound to its claim."""
    source_spec = mount.source_volume.get("spec", {})
    spec: dict[str, Any] = {}
    for key, value in source_spec.items():
        if key in VOLUME_SOURCE_KEYS:
            value = copy.deepcopy(value)
            if key in READ_ONLY_CAPABLE:
                value["readOnly"] = True
            spec[key] = value
    capacity = source_spec.get("capacity", {}).get("storage", "1Gi")
    spec.update({
        "capacity": {"storage": capacity},
        "accessModes": list(READ_ONLY_ACCESS_MODES),
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "volumeMode": source_spec.get("volumeMode", "Filesystem"),
        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace,
                     "name": names.dataset_claim_name(mount.name)},
    })
    for key in ("mountOptions", "nodeAffinity"):
        if key in source_spec:
            spec[key] = copy.deepcopy(source_spec[key])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": names.dataset_volume_name(namespace, mount.name),
                     "labels": {names.LABEL_DATASET: mount.name}},
        "spec": spec,
    }


def build_dataset_claim(mount: DatasetMount, namespace: str) -> dict[str, Any]:
    """The namespace's read-only claim, bound by name to its read-only PersistentVolume."""
    source_spec = mount.source_volume.get("spec", {})
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": names.dataset_claim_name(mount.name), "namespace": namespace,
                     "labels": {names.LABEL_DATASET: mount.name}},
        "spec": {
            "accessModes": list(READ_ONLY_ACCESS_MODES),
            "storageClassName": "",
            "volumeName": names.dataset_volume_name(namespace, mount.name),
            "volumeMode": source_spec.get("volumeMode", "Filesystem"),
            "resources": {"requests": {"storage": source_spec.get("capacity", {}).get("storage", "1Gi")}},
        },
    }
