"""Whether a Workspace may run: the admission rules checked again at reconcile time (admission
can be bypassed and the world changes after it: a permit expires, a tool is revoked, a dataset
is re-ingested). Pure: everything is passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from spe_api import ConditionType, DataPermit, DataPermitPhase, Reason, Tool, Workspace
from spe_api.common import utc
from spe_api.reasons import WorkspaceMessage as M

from ..admission import rules
from .datasets import DatasetVerdict
from .volumes import StorageChoice


@dataclass(frozen=True)
class Gate:
    """One condition that must hold for the server to run."""

    type: str
    ok: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Isolation:
    """What the namespace holds of its permit's isolation (the permit's own NetworkPolicies and
    ResourceQuota, by owner), or None when it was not looked at (a stopped or running server)."""

    wanted: frozenset[str]
    found: frozenset[str]

    @property
    def missing(self) -> list[str]:
        return sorted(self.wanted - self.found)


@dataclass(frozen=True)
class Gates:
    permit: Gate
    tool: Gate
    datasets: Gate
    volumes: Gate
    ceilings: Gate
    isolation: Gate

    def all(self) -> tuple[Gate, ...]:
        return (self.permit, self.isolation, self.tool, self.datasets, self.volumes, self.ceilings)

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.all())

    @property
    def first_failure(self) -> Gate | None:
        return next((g for g in self.all() if not g.ok), None)


def permit_gate(ws: Workspace, permit: DataPermit | None, expected_namespace: str, now: datetime) -> Gate:
    t = ConditionType.PERMIT_ACTIVE
    if permit is None:
        return Gate(t, False, Reason.PERMIT_NOT_FOUND, M.PERMIT_NOT_FOUND.format(permit=ws.spec.permit))
    if ws.namespace != expected_namespace:
        return Gate(t, False, Reason.WRONG_NAMESPACE, rules.msg.WRONG_NAMESPACE.format(
            namespace=ws.namespace, permit=permit.name, expected=expected_namespace))
    phase = permit.phase_at(now)
    if phase != DataPermitPhase.ACTIVE:
        reason = {DataPermitPhase.EXPIRED: Reason.EXPIRED, DataPermitPhase.SUSPENDED: Reason.SUSPENDED,
                  DataPermitPhase.REVOKED: Reason.REVOKED, DataPermitPhase.PENDING: Reason.NOT_YET_VALID}[phase]
        denial = rules.permit_active_denial(ws, permit, now)
        return Gate(t, False, reason, denial.message if denial else phase.value)
    subjects = {m.subject for m in permit.spec.members}
    for subject in ws.spec.members:
        if subject not in subjects:
            return Gate(t, False, Reason.MEMBER_NOT_IN_PERMIT, rules.msg.MEMBER_NOT_IN_PERMIT.format(
                subject=subject, permit=permit.name))
    return Gate(t, True, Reason.ACTIVE, M.PERMIT_ACTIVE.format(
        permit=permit.name, not_after=permit.spec.not_after.isoformat()))


def tool_gate(ws: Workspace, tool: Tool | None, available: Iterable[str] = ()) -> Gate:
    t = ConditionType.TOOL_APPROVED
    denial = rules.tool_denial(ws, tool, available)
    if denial is not None:
        return Gate(t, False, denial.reason, denial.message)
    assert tool is not None
    return Gate(t, True, Reason.APPROVED, M.TOOL_APPROVED.format(tool=tool.name, image=tool.spec.image))


def datasets_gate(ws: Workspace, permit: DataPermit | None, verdict: DatasetVerdict) -> Gate:
    t = ConditionType.DATASETS_READY
    if permit is not None:
        granted = permit.spec.datasets
        for dataset in ws.spec.datasets:
            if dataset not in granted:
                return Gate(t, False, Reason.DATASET_NOT_IN_PERMIT, rules.msg.DATASET_NOT_IN_PERMIT.format(
                    dataset=dataset, permit=permit.name, granted=", ".join(granted)))
    return Gate(t, verdict.ok, verdict.reason, verdict.message)


def volumes_gate(choice: StorageChoice, apply_error: str | None = None) -> Gate:
    t = ConditionType.VOLUMES_READY
    if apply_error:
        return Gate(t, False, Reason.APPLY_FAILED, M.APPLY_FAILED.format(what="the volume claims", error=apply_error))
    return Gate(t, choice.ok, choice.reason, choice.message)


def _ahead(other: Workspace, ws: Workspace) -> bool:
    """Whether ``other`` takes precedence (older first, then by name): admission normally keeps
    the total within the ceilings; when it did not (a race, a lowered ceiling), the newest
    workspaces are the ones blocked, never all of them."""
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return (utc(other.metadata.creation_timestamp or epoch), other.name) < \
        (utc(ws.metadata.creation_timestamp or epoch), ws.name)


def ceilings_gate(ws: Workspace, permit: DataPermit | None, others: Iterable[Workspace]) -> Gate:
    """Compute within the permit's ceilings, counting the permit's running workspaces that take
    precedence (only while this one should run: a stopped workspace holds no compute)."""
    t = ConditionType.WITHIN_CEILINGS
    if permit is None or not ws.spec.running:
        return Gate(t, True, Reason.WITHIN_CEILINGS, M.WITHIN_CEILINGS.format(permit=ws.spec.permit))
    denial = rules.ceiling_denial(ws, permit, [o for o in others if _ahead(o, ws)])
    if denial is not None:
        return Gate(t, False, denial.reason, denial.message)
    return Gate(t, True, Reason.WITHIN_CEILINGS, M.WITHIN_CEILINGS.format(permit=permit.name))


def isolation_gate(ws: Workspace, isolation: Isolation | None) -> Gate:
    """No server starts before its permit namespace's NetworkPolicies and quota are in place, as
    the permit reconciler applied them (owned by the permit): a namespace without default-deny is
    a namespace with a route out. Checked live when a server is about to start."""
    t = ConditionType.NAMESPACE_ISOLATED
    if isolation is None:
        return Gate(t, True, Reason.ISOLATION_NOT_CHECKED, M.ISOLATION_NOT_CHECKED)
    missing = isolation.missing
    if missing:
        return Gate(t, False, Reason.NOT_ISOLATED, M.NOT_ISOLATED.format(
            namespace=ws.namespace, missing=", ".join(missing), permit=ws.spec.permit))
    return Gate(t, True, Reason.ISOLATED, M.ISOLATED.format(
        namespace=ws.namespace, found=", ".join(sorted(isolation.found & isolation.wanted))))


def evaluate(ws: Workspace, *, permit: DataPermit | None, expected_namespace: str, tool: Tool | None,
             available_tools: Iterable[str], datasets: DatasetVerdict, storage: StorageChoice,
             others: Iterable[Workspace], now: datetime, volume_error: str | None = None,
             isolation: Isolation | None = None) -> Gates:
    return Gates(
        isolation=isolation_gate(ws, isolation),
        permit=permit_gate(ws, permit, expected_namespace, now),
        tool=tool_gate(ws, tool, available_tools),
        datasets=datasets_gate(ws, permit, datasets),
        volumes=volumes_gate(storage, volume_error),
        ceilings=ceilings_gate(ws, permit, others),
    )
