"""Read-only access to a Dataset's volume from a permit's namespace.

A Dataset is cluster-scoped; its de-identified data live on the PersistentVolume bound to the
claim its own ingest wrote into, in the operator's namespace (``spe_api.datasetvolume``: the
claim carries the dataset's labels, state ``ready`` once the ingest completed and was verified,
and an ownerReference to the Dataset's uid). That claim is found here by those marks, newest
ready revision first -- never by a name taken from ``Dataset.status``, which whoever can write
status would otherwise choose. A pod can only mount a claim of its own namespace, and one
PersistentVolume binds exactly one claim, so each permit namespace gets its own pair pointing
at the same backing source:

* a PersistentVolume ``ds.<namespace>.<dataset>.r<revision>``: the source PV's volume source (CSI handle,
  NFS export, ...) copied with ``readOnly: true`` where the source type has that field,
  ``ReadOnlyMany``, reclaim policy ``Retain`` (deleting it never touches the data), no storage
  class (never provisioned), pre-bound by ``claimRef`` to
* a PersistentVolumeClaim ``ds.<dataset>.r<revision>`` in the namespace, ``ReadOnlyMany``, ``volumeName``
  set, so nothing else can bind either.

The notebook mounts only the volume's ``data/`` (subPath) with ``readOnly: true`` on the volume
and on the mount: read-only at three levels, and the quarantine, the report and the journal
beside it are never visible. Both objects are owned by the DataPermit (a cluster-scoped owner
may own a namespaced and a cluster-scoped object; a namespaced Workspace may not own a PV), so
they go when the permit goes. CSI note: the copies share the source's ``volumeHandle``;
shared-file drivers (NFS, CephFS, SMB CSI) support several read-only PVs per handle.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from spe_api import Dataset, DatasetPhase, Reason
from spe_api import datasetvolume as dv
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
    """A dataset the workspace mounts: its name, the source PersistentVolume and the revision
    (the ingest claim's) it holds."""

    name: str
    source_volume: dict[str, Any]
    revision: int = 0


@dataclass(frozen=True)
class DatasetVerdict:
    ok: bool
    reason: str
    message: str
    mounts: tuple[DatasetMount, ...] = ()


@dataclass(frozen=True)
class DatasetSource:
    """The claim (in the operator's namespace) a Dataset's volume is taken from, or why none."""

    claim: dict[str, Any] | None
    detail: str = ""

    @property
    def volume_name(self) -> str | None:
        return ((self.claim or {}).get("spec") or {}).get("volumeName") or None

    @property
    def revision(self) -> int:
        return _revision((self.claim or {}).get("metadata", {}).get("labels") or {}) or 0


def _revision(labels: dict[str, str]) -> int | None:
    try:
        return int(labels.get(dv.LABEL_REVISION, ""))
    except ValueError:
        return None


def _owned_by(claim: dict[str, Any], dataset: Dataset) -> bool:
    uid = dataset.metadata.uid
    return bool(uid) and any(ref.get("uid") == uid and ref.get("kind") == Dataset.KIND
                             for ref in claim.get("metadata", {}).get("ownerReferences") or ())


def select_dataset_claim(dataset: Dataset, claims: list[dict[str, Any]], namespace: str,
                         keep: int | None = None) -> DatasetSource:
    """The newest ready, bound claim the Dataset reconciler produced for ``dataset`` (pure);
    revision ``keep`` instead while it is still ready (the revision a running server mounts:
    a re-ingest does not restart it, the next start takes the new one).

    Produced by it means: in the operator's ``namespace``, labelled with the dataset's name and
    a revision, owned (ownerReference) by this very Dataset (its uid: a deleted and re-created
    Dataset of the same name owns none of the old claims)."""
    candidates = []
    states = set()
    for claim in claims:
        md = claim.get("metadata", {})
        labels = md.get("labels") or {}
        if (md.get("namespace") != namespace or labels.get(dv.LABEL_DATASET) != dataset.name
                or md.get("deletionTimestamp") or not _owned_by(claim, dataset)):
            continue
        revision = _revision(labels)
        if revision is None:
            continue
        states.add(labels.get(dv.LABEL_STATE) or "unmarked")
        if labels.get(dv.LABEL_STATE) == dv.STATE_READY:
            candidates.append((revision, claim))
    if not candidates:
        seen = f"its claims are {', '.join(sorted(states))}" if states else "no ingest claim of it"
        return DatasetSource(None, f"no ready ingest claim in {namespace}: {seen}")
    kept = [c for c in candidates if c[0] == keep and ((c[1].get("status") or {}).get("phase") == "Bound")]
    revision, claim = kept[0] if kept else max(candidates, key=lambda c: c[0])
    name = claim["metadata"].get("name")
    if not (claim.get("spec") or {}).get("volumeName") or (claim.get("status") or {}).get("phase") != "Bound":
        return DatasetSource(None, f"claim {namespace}/{name} (revision {revision}) is not bound")
    return DatasetSource(claim)


def volume_bound_to(volume: dict[str, Any] | None, claim: dict[str, Any]) -> str | None:
    """Why ``volume`` is not the one bound to ``claim`` (None: it is): the PersistentVolume must
    name that very claim (its uid) in its claimRef."""
    md = claim.get("metadata", {})
    name = (claim.get("spec") or {}).get("volumeName")
    if volume is None:
        return f"PersistentVolume {name!r} of claim {md.get('namespace')}/{md.get('name')} not found"
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    if (ref.get("namespace"), ref.get("name"), ref.get("uid")) != (md.get("namespace"), md.get("name"), md.get("uid")):
        return (f"PersistentVolume {name!r} is not bound to claim {md.get('namespace')}/{md.get('name')}")
    return None


def evaluate_datasets(requested: list[str], datasets: dict[str, Dataset | None],
                      sources: dict[str, dict[str, Any] | None],
                      errors: dict[str, str] | None = None, *, revisions: dict[str, int] | None = None,
                      verifier_missing: tuple[str, str] | None = None) -> DatasetVerdict:
    """DatasetsReady: every requested dataset exists, is Ready, has a volume its ingest produced,
    and can be verified before use.

    ``datasets`` maps each requested name to its Dataset (None: missing); ``sources`` maps it
    to the source PersistentVolume (None: not found); ``errors`` says why there is no source,
    where there is none; ``revisions`` the ingest revision of each source; ``verifier_missing``
    (what, setting) when the operator lacks what the verification needs."""
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
            detail = (errors or {}).get(name) or "no volume found"
            return DatasetVerdict(False, Reason.DATASET_VOLUME_MISSING, M.DATASET_VOLUME_MISSING.format(
                dataset=name, detail=detail))
        kinds = sorted(k for k in (source.get("spec") or {}) if k in VOLUME_SOURCE_KEYS)
        if len(kinds) != 1:
            return DatasetVerdict(False, Reason.DATASET_VOLUME_MISSING, M.DATASET_VOLUME_MISSING.format(
                dataset=name, detail=f"PersistentVolume {source['metadata'].get('name')!r} is not of a kind "
                                     f"workspaces mount ({', '.join(sorted(VOLUME_SOURCE_KEYS))})"))
        if verifier_missing is not None:
            what, setting = verifier_missing
            return DatasetVerdict(False, Reason.DATASET_VERIFICATION_NOT_CONFIGURED,
                                  M.DATASET_VERIFICATION_NOT_CONFIGURED.format(dataset=name, what=what, setting=setting))
        mounts.append(DatasetMount(name, source, (revisions or {}).get(name, 0)))
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
                     "name": names.dataset_claim_name(mount.name, mount.revision)},
    })
    for key in ("mountOptions", "nodeAffinity"):
        if key in source_spec:
            spec[key] = copy.deepcopy(source_spec[key])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": names.dataset_volume_name(namespace, mount.name, mount.revision),
                     "labels": {names.LABEL_DATASET: mount.name}},
        "spec": spec,
    }


def build_dataset_claim(mount: DatasetMount, namespace: str) -> dict[str, Any]:
    """The namespace's read-only claim, bound by name to its read-only PersistentVolume."""
    source_spec = mount.source_volume.get("spec", {})
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": names.dataset_claim_name(mount.name, mount.revision), "namespace": namespace,
                     "labels": {names.LABEL_DATASET: mount.name}},
        "spec": {
            "accessModes": list(READ_ONLY_ACCESS_MODES),
            "storageClassName": "",
            "volumeName": names.dataset_volume_name(namespace, mount.name, mount.revision),
            "volumeMode": source_spec.get("volumeMode", "Filesystem"),
            "resources": {"requests": {"storage": source_spec.get("capacity", {}).get("storage", "1Gi")}},
        },
    }
