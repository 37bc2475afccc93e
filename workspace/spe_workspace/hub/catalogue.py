"""Which Workspaces a person may use: the hub's one rule, read from the Kubernetes API.

A person may use Workspace ``<namespace>/<name>`` when its DataPermit is **Active**, names the
person among ``spec.members``, and the Workspace itself names them too (``spec.members``; the
admission webhook keeps those a subset of the permit's). A subject is a username or an e-mail
address (``spe_api.PermitMember.subject``) and is compared case-insensitively with every
identity the hub knows for the person (its username, the e-mail of its login).

The hub reads DataPermits cluster-wide (``spe-permit-reader``) and Workspaces only in the
namespaces where the operator bound ``spe-permit-hub`` (Pending, Active and Suspended permits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from spe_api import DataPermit, DataPermitPhase, Workspace
from spe_api.hubserver import hub_server_name
from spe_api.subjects import subject_key
from spe_kube import KubeClient

PERMIT = ("spe.ehds.io/v1alpha1", "DataPermit")
WORKSPACE = ("spe.ehds.io/v1alpha1", "Workspace")


@dataclass(frozen=True)
class WorkspaceEntry:
    """One Workspace a person may use, as the home page and the spawner need it."""

    namespace: str
    name: str
    permit: str
    display_name: str
    phase: str
    ready: bool
    message: str
    url: str | None

    @property
    def server_name(self) -> str:
        return hub_server_name(self.namespace, self.name)


def identities(username: str, auth_state: dict[str, Any] | None = None) -> frozenset[str]:
    """Every subject a permit may name this person by (as compared: spe_api.subjects.subject_key):
    username, login e-mail."""
    out = {subject_key(username)}
    user = (auth_state or {}).get("oauth_user") or {}
    for key in ("preferred_username", "email"):
        value = user.get(key)
        if isinstance(value, str) and value:
            out.add(subject_key(value))
    return frozenset(out)


def _names(subjects: Iterable[str], who: frozenset[str]) -> bool:
    return any(subject_key(s) in who for s in subjects)


def permits_naming(permits: Iterable[DataPermit], who: frozenset[str]) -> list[DataPermit]:
    """The Active permits among ``permits`` whose members include ``who``."""
    return [p for p in permits
            if p.status.phase == DataPermitPhase.ACTIVE and _names((m.subject for m in p.spec.members), who)]


def _ready(ws: Workspace) -> tuple[bool, str]:
    for cond in ws.status.conditions or []:
        if cond.type == "Ready":
            return cond.status == "True", cond.message or ""
    return False, ""


def entry_of(ws: Workspace) -> WorkspaceEntry:
    ready, message = _ready(ws)
    return WorkspaceEntry(namespace=ws.namespace or "", name=ws.name, permit=ws.spec.permit,
                          display_name=ws.spec.display_name or ws.name,
                          phase=str(ws.status.phase or "Pending"), ready=ready, message=message, url=ws.status.url)


def usable(permit: DataPermit, workspaces: Iterable[Workspace], who: frozenset[str]) -> list[WorkspaceEntry]:
    """The workspaces of ``permit`` (already known to name ``who``) that name ``who`` too."""
    return sorted((entry_of(ws) for ws in workspaces
                   if ws.spec.permit == permit.name and _names(ws.spec.members, who)),
                  key=lambda e: (e.namespace, e.name))


def _parsed(model, items: Iterable[dict]) -> list:
    """Objects that fit the model (the API server's schema makes a misfit rare; one is skipped,
    never the whole list)."""
    out = []
    for item in items:
        try:
            out.append(model.from_manifest(item))
        except ValidationError:
            continue
    return out


async def active_permits(kube: KubeClient, who: frozenset[str]) -> list[DataPermit]:
    return permits_naming(_parsed(DataPermit, await kube.list(PERMIT)), who)


async def workspaces_for(kube: KubeClient, who: frozenset[str]) -> list[WorkspaceEntry]:
    """Exactly the Workspaces of Active permits naming ``who`` that name ``who`` too."""
    out: list[WorkspaceEntry] = []
    for permit in await active_permits(kube, who):
        items = await kube.list(WORKSPACE, permit.target_namespace)
        out.extend(usable(permit, _parsed(Workspace, items), who))
    return out


async def find(kube: KubeClient, who: frozenset[str], namespace: str, name: str) -> WorkspaceEntry | None:
    """The entry of ``namespace/name`` if ``who`` may use it now, else None."""
    for entry in await workspaces_for(kube, who):
        if (entry.namespace, entry.name) == (namespace, name):
            return entry
    return None
