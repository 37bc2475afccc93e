"""What the gateway reads and writes in the cluster, behind one small interface.

``KubeStore`` (in ``kube_store.py``) speaks to the Kubernetes API; ``MemoryStore`` keeps the
same objects in a dict for unit tests and local runs. Review objects are plain dicts shaped
exactly like an ``OutputReview`` (apiVersion, kind, metadata, spec, status).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from spe_api import ExportPolicy as PermitExportPolicy
from spe_api import permit_namespace
from spe_api.subjects import subject_in

from .checks_adapter import Thresholds

API_VERSION = "spe.ehds.io/v1alpha1"
LABEL_PERMIT = "spe.ehds.io/permit"
LABEL_WORKSPACE = "spe.ehds.io/workspace"
LABEL_REQUESTER = "spe.ehds.io/requester"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
_DEFAULT_POLICY = PermitExportPolicy()


class Conflict(Exception):
    """The object changed since it was read (optimistic concurrency); read again and retry."""


@dataclass(frozen=True)
class ExportPolicy:
    """The gateway's view of a permit's export policy; defaults are the DataPermit model's."""

    reviewers_required: int = _DEFAULT_POLICY.reviewers_required
    retention_days: int = _DEFAULT_POLICY.retention_days
    max_files: int = 100  # per request: the gateway's own limit, not part of a permit
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class PermitInfo:
    name: str
    phase: str
    members: frozenset[str]
    datasets: tuple[str, ...] = ()
    policy: ExportPolicy = field(default_factory=ExportPolicy)
    # The permit's datasets' pseudonyms: a PseudonymSet of their digests from the cluster
    # (kube_store), or clear ones (tests, the in-memory store).
    pseudonymous_ids: AbstractSet[str] = frozenset()
    namespace: str = ""  # where the permit's workspaces live; "" = its permit_namespace
    reviewers: frozenset[str] = frozenset()  # who may review its exports (exportPolicy.reviewers)
    everyone: frozenset[str] = frozenset()   # every person the permit names, whatever their role

    @property
    def workspace_namespace(self) -> str:
        return self.namespace or permit_namespace(self.name)

    @property
    def active(self) -> bool:
        return self.phase == "Active"

    def has_member(self, user: str) -> bool:
        """A researcher of the permit (who may export)."""
        return subject_in(user, self.members)

    def names(self, user: str) -> bool:
        """Anyone the permit names (researcher or data-holder delegate): never a reviewer of it."""
        return subject_in(user, self.members | self.everyone)

    def names_reviewer(self, user: str) -> bool:
        return subject_in(user, self.reviewers)


@dataclass(frozen=True)
class WorkspaceInfo:
    namespace: str
    name: str
    permit: str
    members: frozenset[str] = frozenset()


class Store(Protocol):
    async def get_permit(self, name: str) -> PermitInfo | None: ...
    async def get_workspace(self, namespace: str, name: str) -> WorkspaceInfo | None: ...
    async def pseudonyms(self, permit: PermitInfo) -> AbstractSet[str]: ...
    async def create_review(self, obj: dict) -> dict: ...
    async def get_review(self, namespace: str, name: str) -> dict | None: ...
    async def find_review(self, name: str) -> dict | None: ...
    async def list_reviews(self, *, requester: str | None = None) -> list[dict]: ...
    async def replace_status(self, obj: dict) -> dict: ...
    async def ended_reviews(self) -> list[tuple[str, str]]: ...
    async def forget(self, namespace: str, name: str) -> None: ...
    async def close(self) -> None: ...


def now_iso(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc) if ts is not None else datetime.now(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class MemoryStore:
    """An in-process store with the same optimistic-concurrency contract as the API server."""

    def __init__(self) -> None:
        self.permits: dict[str, PermitInfo] = {}
        self.workspaces: dict[tuple[str, str], WorkspaceInfo] = {}
        self.reviews: dict[tuple[str, str], dict] = {}
        self._rv = itertools.count(1)
        self._lock = asyncio.Lock()

    # setup helpers for tests
    def add_permit(self, permit: PermitInfo) -> None:
        self.permits[permit.name] = permit

    def add_workspace(self, ws: WorkspaceInfo) -> None:
        self.workspaces[(ws.namespace, ws.name)] = ws

    async def get_permit(self, name: str) -> PermitInfo | None:
        return self.permits.get(name)

    async def get_workspace(self, namespace: str, name: str) -> WorkspaceInfo | None:
        return self.workspaces.get((namespace, name))

    async def pseudonyms(self, permit: PermitInfo) -> AbstractSet[str]:
        return permit.pseudonymous_ids

    async def create_review(self, obj: dict) -> dict:
        async with self._lock:
            md = obj["metadata"]
            key = (md["namespace"], md["name"])
            if key in self.reviews:
                raise Conflict(f"{key} exists")
            new = copy.deepcopy(obj)
            new["metadata"]["resourceVersion"] = str(next(self._rv))
            new["metadata"].setdefault("creationTimestamp", now_iso())
            new.setdefault("status", {})
            self.reviews[key] = new
            return copy.deepcopy(new)

    async def get_review(self, namespace: str, name: str) -> dict | None:
        obj = self.reviews.get((namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def find_review(self, name: str) -> dict | None:
        for (ns, n), obj in self.reviews.items():
            if n == name:
                return copy.deepcopy(obj)
        return None

    async def list_reviews(self, *, requester: str | None = None) -> list[dict]:
        return [copy.deepcopy(o) for o in self.reviews.values()
                if requester is None or o["spec"].get("requester") == requester]

    async def _replace(self, obj: dict, part: str) -> dict:
        async with self._lock:
            md = obj["metadata"]
            key = (md["namespace"], md["name"])
            cur = self.reviews.get(key)
            if cur is None:
                raise KeyError(key)
            if md.get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                raise Conflict(f"{key} changed")
            cur[part] = copy.deepcopy(obj.get(part, {}))
            cur["metadata"]["resourceVersion"] = str(next(self._rv))
            return copy.deepcopy(cur)

    async def replace_status(self, obj: dict) -> dict:
        return await self._replace(obj, "status")

    async def ended_reviews(self) -> list[tuple[str, str]]:
        """Requests deleted from the cluster whose quarantine is still to be purged (the
        in-memory store deletes at once: nothing waits on the gateway)."""
        return []

    async def forget(self, namespace: str, name: str) -> None:
        self.reviews.pop((namespace, name), None)

    async def close(self) -> None:
        return None
