"""The permit's status, the acts and events a reconcile reports, and the stop of its
workspaces: pure functions of (permit, phase, what the reconcile found, now)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spe_api import (Allocation, ConditionType, DataPermit, DataPermitPhase, DataPermitStatus, Message, Reason,
                     Workspace, WorkspaceGpuHours, get_condition, set_condition)
from spe_api.datapermit import MAX_GPU_LEDGER
from spe_api.reasons import permit_phase_reason

from ..holdings import Holdings
from .phase import PhaseInfo

MAX_LISTED_WORKSPACES = 100  # status.workspaces maxItems


@dataclass(frozen=True)
class ChildrenResult:
    """How applying the children went."""

    ok: bool
    reason: str = Reason.RECONCILED
    message: str = ""


@dataclass(frozen=True)
class Transition:
    """A change worth an Event and an audit record (act is an ``spe_audit.Act`` value)."""

    act: str
    reason: str
    message: str
    warning: bool = False


def allocation_of(workspaces: list[Workspace]) -> Allocation:
    """What the workspaces hold: compute while running, storage (home + outputs) always."""
    return Holdings.of(workspaces).allocation()


def gpu_ledger(recorded: list[WorkspaceGpuHours], workspaces: list[Workspace]) -> list[WorkspaceGpuHours]:
    """GPU-hours per workspace: the recorded entries (deleted workspaces keep theirs), each
    raised to what the workspace's GPU agent now reports (``status.gpuUsage.gpuHours`` only
    grows). Oldest entries of deleted workspaces go first when the list is full."""
    entries = {e.uid: e for e in recorded}
    live: set[str] = set()
    for ws in workspaces:
        usage, uid = ws.status.gpu_usage, ws.metadata.uid
        if usage is None or not uid:
            continue
        live.add(uid)
        old = entries.get(uid)
        hours = round(max(usage.gpu_hours, old.hours if old else 0.0), 4)
        if old is None or old.hours != hours:
            entries[uid] = WorkspaceGpuHours(workspace=ws.name, uid=uid, hours=hours)
    out = list(entries.values())
    while len(out) > MAX_GPU_LEDGER:
        gone = next((i for i, e in enumerate(out) if e.uid not in live), 0)
        out.pop(gone)
    return out


def build_status(permit: DataPermit, info: PhaseInfo, children: ChildrenResult, workspaces: list[Workspace],
                 namespace: str, now: datetime) -> DataPermitStatus:
    """The whole status, conditions carried over (transition times kept while unchanged)."""
    gen = permit.generation
    conds = list(permit.status.conditions)
    conds = set_condition(conds, ConditionType.WITHIN_VALIDITY, info.within_validity, info.validity_reason,
                          info.validity_message, gen, now)
    conds = set_condition(conds, ConditionType.ACTIVE, info.phase == DataPermitPhase.ACTIVE, info.reason,
                          info.message, gen, now)
    ns_message = children.message or Message.PERMIT_NAMESPACE_READY.format(namespace=namespace)
    conds = set_condition(conds, ConditionType.NAMESPACE_READY, children.ok, children.reason, ns_message, gen, now)
    ready = children.ok and info.phase == DataPermitPhase.ACTIVE
    ready_reason = info.reason if children.ok else children.reason
    ready_message = info.message if children.ok else ns_message
    conds = set_condition(conds, ConditionType.READY, ready, ready_reason, ready_message, gen, now)
    live = [ws for ws in workspaces if ws.metadata.deletion_timestamp is None]
    ledger = gpu_ledger(permit.status.gpu_ledger, workspaces)
    return permit.status.model_copy(update={
        "gpu_ledger": ledger,
        "gpu_hours": round(sum(e.hours for e in ledger), 4) if ledger else permit.status.gpu_hours,
        "phase": info.phase,
        "namespace": namespace,
        "members": len(permit.spec.members),
        "workspaces": sorted(ws.name for ws in live)[:MAX_LISTED_WORKSPACES],
        "allocated": allocation_of(live),
        "conditions": conds,
        "observed_generation": gen,
        "message": info.message if children.ok else ns_message,
    })


def _iso(dt: datetime) -> str:
    from spe_api.common import utc
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


_PHASE_ACTS = {
    DataPermitPhase.SUSPENDED: "permit.suspended",
    DataPermitPhase.REVOKED: "permit.revoked",
    DataPermitPhase.EXPIRED: "permit.expired",
}


def transitions(permit: DataPermit, info: PhaseInfo, namespace: str) -> list[Transition]:
    """What changed since the recorded status: issued (first reconcile), spec changed (new
    generation), and entering a phase that stops the permit (or becoming active again)."""
    old_phase = permit.status.phase
    out: list[Transition] = []
    if old_phase is None:
        out.append(Transition("permit.issued", Reason.ISSUED, Message.PERMIT_ISSUED.format(
            permit_id=permit.spec.permit_id, namespace=namespace, members=len(permit.spec.members),
            not_after=_iso(permit.spec.not_after))))
    elif permit.status.observed_generation is not None and permit.status.observed_generation != permit.generation:
        out.append(Transition("permit.changed", Reason.CHANGED, Message.PERMIT_CHANGED.format(
            permit_id=permit.spec.permit_id, generation=permit.generation)))
    if info.phase != old_phase:
        act = _PHASE_ACTS.get(info.phase)
        if act is not None:
            out.append(Transition(act, info.reason, info.message, warning=True))
        elif old_phase is not None:
            out.append(Transition("permit.changed", info.reason, info.message))
    return out


# --- workspaces -----------------------------------------------------------------------------

@dataclass
class WorkspaceActions:
    """What to do to the permit's workspaces: stop the running ones, mark the condition."""

    stop: list[Workspace] = field(default_factory=list)
    mark: list[Workspace] = field(default_factory=list)


def workspace_actions(info: PhaseInfo, workspaces: list[Workspace]) -> WorkspaceActions:
    """While the phase stops workspaces: every running one is stopped, and every one whose
    PermitActive condition is not already False gets it (when it is False, the Workspace
    reconciler has said why in its own words: no tug of war over the reason)."""
    actions = WorkspaceActions()
    if not info.stops_workspaces:
        return actions
    for ws in workspaces:
        if ws.metadata.deletion_timestamp is not None:
            continue
        if ws.spec.running:
            actions.stop.append(ws)
        cond = get_condition(ws.status.conditions, ConditionType.PERMIT_ACTIVE)
        if cond is None or cond.status.value != "False":
            actions.mark.append(ws)
    return actions


def stop_patch() -> dict[str, Any]:
    return {"spec": {"running": False}}


def permit_active_condition(ws: Workspace, info: PhaseInfo, now: datetime) -> dict[str, Any]:
    """The Workspace status (server-side apply body) carrying PermitActive=False and why."""
    reason = permit_phase_reason(info.phase.value)
    message = Message.WORKSPACE_STOPPED_BY_PERMIT.format(detail=info.message)
    conds = set_condition(ws.status.conditions, ConditionType.PERMIT_ACTIVE, False, reason, message,
                          ws.generation, now)
    cond = next(c for c in conds if c.type == ConditionType.PERMIT_ACTIVE)
    return {"apiVersion": ws.api_version, "kind": ws.kind,
            "metadata": {"name": ws.name, "namespace": ws.namespace},
            "status": {"conditions": [cond.to_dict()]}}
