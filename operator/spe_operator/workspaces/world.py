"""The controller's in-memory view of the cluster, fed by watch events (no per-reconcile lists).

Holds the Workspaces (parsed model and the identity of the body), the Tools, Datasets and DataPermits they
refer to (parsed once per resourceVersion), the observed children's resourceVersions and the
server pods, plus reverse indexes (permit/tool/dataset -> workspaces) so that a change of a
Tool, Dataset or permit re-queues only the workspaces that use it.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from spe_api import DataPermit, Dataset, Tool, Workspace
from spe_api import datasetvolume as dv

from ..children import LABEL_WORKSPACE
from .status import PodView

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
ChildKey = tuple[str, str, str]  # (kind, namespace or "", name)


def _rv(body: Mapping[str, Any]) -> str:
    return str(body.get("metadata", {}).get("resourceVersion", ""))


def spec_token(body: Mapping[str, Any]) -> str:
    """What identifies a child's *desired* state as observed, ignoring status updates by its
    controller (which would otherwise make every status change look like drift):
    a StatefulSet's generation (spec changes bump it), a claim's mere presence (its spec is
    immutable but for a resize; its status changes on binding), anything else's
    resourceVersion (a Service has no status writers)."""
    md = body.get("metadata", {})
    kind = body.get("kind")
    if kind == "StatefulSet":
        return f"g{md.get('generation')}"
    if kind == "PersistentVolumeClaim":
        return f"uid:{md.get('uid')}"
    return _rv(body)


def kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy of a watched body to keep in memory, without ``metadata.managedFields``
    (nothing here reads them; they were 40 % of a Workspace's bytes), its keys interned (each
    watch event brings its own copies of the same few hundred key strings). At 5,000 Workspaces
    the kept bodies were most of the operator's memory (bench/operator)."""
    data = _interned(body)
    (data.get("metadata") or {}).pop("managedFields", None)
    return data


def _interned(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {sys.intern(k) if isinstance(k, str) else k: _interned(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_interned(v) for v in value]
    if isinstance(value, str) and len(value) <= _INTERNED_VALUE_MAX:
        return sys.intern(value)   # condition types, reasons, phases, permit and tool names repeat
    return value


_INTERNED_VALUE_MAX = 128
_IDENTITY_KEYS = ("name", "namespace", "uid", "resourceVersion", "generation")


def identity(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the controller needs of a Workspace's body besides its parsed model: what owner
    references and Events name (kind, name, uid, resourceVersion). The model holds the rest."""
    md = body.get("metadata") or {}
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": {k: md[k] for k in _IDENTITY_KEYS if k in md}}


_FIELD_SETS: dict[frozenset[str], set[str]] = {}


def shared_field_sets(value: Any) -> Any:
    """``value`` (a parsed model kept in memory) with its models' ``model_fields_set`` shared.

    pydantic keeps in every model instance the set of the fields its input gave: a Workspace is
    about sixteen models (eight of them conditions), and these sets, about 600 bytes each, were
    the largest kind of object in the operator at 5,000 workspaces (bench/operator --census).
    Nothing in the SPE reads them, and models parsed from like manifests hold like sets: one set
    per distinct content serves them all. (``model_copy`` copies the set before it adds to it.)"""
    if isinstance(value, BaseModel):
        own = value.__pydantic_fields_set__
        object.__setattr__(value, "__pydantic_fields_set__", _FIELD_SETS.setdefault(frozenset(own), own))
        for item in value.__dict__.values():
            shared_field_sets(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            shared_field_sets(item)
    elif isinstance(value, dict):
        for item in value.values():
            shared_field_sets(item)
    return value


def newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion ``candidate`` is not older than ``current`` (etcd revisions are
    integers in practice; anything else is taken as newer)."""
    try:
        return int(candidate) >= int(current)
    except ValueError:
        return True


@dataclass
class WorkspaceEntry:
    body: dict[str, Any]          # identity() of the body: the model holds spec and status
    model: Workspace | None
    fingerprint: tuple


def fingerprint(body: Mapping[str, Any], annotations: tuple[str, ...]) -> tuple:
    """What makes a reconcile necessary: spec (generation), the annotations the controller
    reads, deletion, the GPU agent's idle verdict. A status-only change (our own status patch) is not in it."""
    md = body.get("metadata", {})
    ann = md.get("annotations") or {}
    # The GPU agent's summary turning idle (or busy again) moves the GPU-idle deadline.
    gpu = ((body.get("status") or {}).get("gpuUsage") or {})
    return (md.get("uid"), md.get("generation"), md.get("deletionTimestamp"), tuple(ann.get(a) for a in annotations),
            gpu.get("idleSince"), gpu.get("state"))


class World:
    def __init__(self, annotations: tuple[str, ...] = ()):
        self._annotations = annotations
        self.workspaces: dict[Key, WorkspaceEntry] = {}
        self.tools: dict[str, tuple[str, Tool | None]] = {}
        self.datasets: dict[str, tuple[str, Dataset | None]] = {}
        # The Dataset reconciler's ingest claims (operator namespace), by dataset label and name.
        self.dataset_claims: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.permits: dict[str, tuple[str, dict[str, Any], DataPermit | None]] = {}
        self.children: dict[ChildKey, str] = {}          # observed spec token of each child (see spec_token)
        self._children_rv: dict[ChildKey, str] = {}      # and its resourceVersion, to drop stale events
        self.children_of: dict[Key, set[ChildKey]] = defaultdict(set)
        self.pods: dict[Key, PodView] = {}
        self.by_permit: dict[str, set[Key]] = defaultdict(set)
        self.by_tool: dict[str, set[Key]] = defaultdict(set)
        self.by_dataset: dict[str, set[Key]] = defaultdict(set)

    # --- workspaces -------------------------------------------------------------------------

    def put_workspace(self, body: Mapping[str, Any]) -> bool:
        """Record a Workspace; True when it needs a reconcile (new, or changed beyond status)."""
        md = body.get("metadata", {})
        key = (md.get("namespace", ""), md.get("name", ""))
        old = self.workspaces.get(key)
        if old is not None and not newer(_rv(body), _rv(old.body)):
            return False
        data = kept(body)
        try:
            model = shared_field_sets(Workspace.from_manifest(data))
        except ValidationError as exc:
            log.warning("Workspace %s/%s does not fit the model: %s", *key, exc)
            model = None
        fp = fingerprint(data, self._annotations)
        self.workspaces[key] = WorkspaceEntry(identity(data), model, fp)
        if old is not None and old.model is not None:
            self._unindex(key, old.model)
        if model is not None:
            self.by_permit[model.spec.permit].add(key)
            self.by_tool[model.spec.tool].add(key)
            for ds in model.spec.datasets:
                self.by_dataset[ds].add(key)
        return old is None or old.fingerprint != fp

    def forget_workspace(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        entry = self.workspaces.pop(key, None)
        if entry is not None and entry.model is not None:
            self._unindex(key, entry.model)

    def _unindex(self, key: Key, ws: Workspace) -> None:
        self.by_permit[ws.spec.permit].discard(key)
        self.by_tool[ws.spec.tool].discard(key)
        for ds in ws.spec.datasets:
            self.by_dataset[ds].discard(key)

    def workspaces_of_permit(self, permit: str) -> list[Workspace]:
        out = []
        for key in self.by_permit.get(permit, ()):
            entry = self.workspaces.get(key)
            if entry is not None and entry.model is not None:
                out.append(entry.model)
        return out

    def workspaces_in(self, namespace: str) -> list[Workspace]:
        """The parsed Workspaces of one namespace (a scan: cheaper than any LIST at 5,000)."""
        return [e.model for (ns, _), e in self.workspaces.items() if ns == namespace and e.model is not None]

    # --- referenced objects -----------------------------------------------------------------

    def put_tool(self, body: Mapping[str, Any]) -> set[Key]:
        name = body["metadata"]["name"]
        if self.tools.get(name, ("",))[0] == _rv(body):
            return set()
        self.tools[name] = (_rv(body), _parse(Tool, body))
        return set(self.by_tool.get(name, ()))

    def forget_tool(self, name: str) -> set[Key]:
        self.tools.pop(name, None)
        return set(self.by_tool.get(name, ()))

    def put_dataset(self, body: Mapping[str, Any]) -> set[Key]:
        name = body["metadata"]["name"]
        if self.datasets.get(name, ("",))[0] == _rv(body):
            return set()
        self.datasets[name] = (_rv(body), _parse(Dataset, body))
        return set(self.by_dataset.get(name, ()))

    def forget_dataset(self, name: str) -> set[Key]:
        self.datasets.pop(name, None)
        return set(self.by_dataset.get(name, ()))

    def put_dataset_claim(self, body: Mapping[str, Any], *, deleted: bool = False) -> set[Key]:
        """Record an ingest claim (or its deletion, or its leaving the watch's selector); returns
        the workspaces of its dataset. A DELETED event may carry only the name: every dataset's
        entry of that name goes."""
        md = body.get("metadata", {})
        name = md.get("name", "")
        dataset = (md.get("labels") or {}).get(dv.LABEL_DATASET)
        touched = set()
        for ds, claims in self.dataset_claims.items():
            if name in claims and (deleted or ds != dataset):
                claims.pop(name)
                touched.add(ds)
        if not deleted and dataset:
            old = self.dataset_claims[dataset].get(name)
            if old is None or newer(_rv(body), _rv(old)):
                self.dataset_claims[dataset][name] = kept(body)
                touched.add(dataset)
        return {k for ds in touched for k in self.by_dataset.get(ds, ())}

    def claims_of_dataset(self, dataset: str) -> list[dict[str, Any]]:
        return list(self.dataset_claims.get(dataset, {}).values())

    def put_permit(self, body: Mapping[str, Any]) -> set[Key]:
        name = body["metadata"]["name"]
        old = self.permits.get(name)
        if old is not None and old[0] == _rv(body):
            return set()
        data = kept(body)
        model = _parse(DataPermit, data)
        self.permits[name] = (_rv(body), data, model)
        # A status-only change of the permit (its own reconciler) changes nothing here.
        if old is not None and old[2] is not None and model is not None and old[2].spec == model.spec \
                and old[1]["metadata"].get("uid") == data["metadata"].get("uid"):
            return set()
        return set(self.by_permit.get(name, ()))

    def forget_permit(self, name: str) -> set[Key]:
        self.permits.pop(name, None)
        return set(self.by_permit.get(name, ()))

    def tool(self, name: str) -> Tool | None:
        return self.tools.get(name, ("", None))[1]

    def dataset(self, name: str) -> Dataset | None:
        return self.datasets.get(name, ("", None))[1]

    def permit(self, name: str) -> tuple[dict[str, Any] | None, DataPermit | None]:
        entry = self.permits.get(name)
        return (entry[1], entry[2]) if entry else (None, None)

    # --- children ---------------------------------------------------------------------------

    def put_child(self, body: Mapping[str, Any], *, deleted: bool = False) -> Key | None:
        """Record a child's resourceVersion (or its deletion); returns its workspace's key."""
        md = body.get("metadata", {})
        ns = md.get("namespace") or ""
        ck = (body.get("kind", ""), ns, md.get("name", ""))
        ws = (md.get("labels") or {}).get(LABEL_WORKSPACE)
        if deleted:
            self.children.pop(ck, None)
            self._children_rv.pop(ck, None)
        elif ck not in self._children_rv or newer(_rv(body), self._children_rv[ck]):
            self.children[ck] = spec_token(body)
            self._children_rv[ck] = _rv(body)
        if ws:
            key = (ns, ws)
            (self.children_of[key].discard if deleted else self.children_of[key].add)(ck)
            return key
        return None

    def put_pod(self, body: Mapping[str, Any], *, deleted: bool = False) -> Key | None:
        md = body.get("metadata", {})
        ws = (md.get("labels") or {}).get(LABEL_WORKSPACE)
        if not ws:
            return None
        key = (md.get("namespace", ""), ws)
        if deleted:
            self.pods.pop(key, None)
        else:
            self.pods[key] = PodView.from_pod(body)
        return key

    def observed_token(self, kind: str, namespace: str | None, name: str) -> str | None:
        return self.children.get((kind, namespace or "", name))


def _parse(model, body: Mapping[str, Any]):
    try:
        return model.from_manifest(body)
    except ValidationError as exc:
        log.warning("%s %s does not fit the model: %s", model.KIND, body.get("metadata", {}).get("name"), exc)
        return None


def listed_world(memo: Mapping[str, Any]) -> World | None:
    """The workspace reconciler's watch-fed view, once its watches have listed; None before, or
    in an operator without that reconciler. The leader runs it in the same process as the
    webhooks and the permit reconciler, which read it instead of listing Workspaces."""
    controller = memo.get("workspace_controller")
    return controller.world if controller is not None and controller.listed else None
