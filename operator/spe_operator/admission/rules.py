"""Rules that need other objects: pure functions, shared by the webhook and the reconcilers.

Each takes the object under review plus the other objects it depends on (fetched by the
caller) and returns ``None`` when the object may pass, or a :class:`Denial` whose message names
the field, the offending value and the fix, and whose reason fits a condition's ``reason``.
Rules that one object can check alone live in the CRD schema (CEL), not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from spe_api import (DataPermit, DataPermitPhase, MemberRole, OutputReview, Reason, Tool, ToolPhase, Workspace,
                     format_quantity, parse_quantity)
from spe_api.subjects import subject_in

from ..holdings import Holdings
from . import messages as msg


@dataclass(frozen=True)
class Denial:
    """Why an object is refused: a condition-style reason and a message for people."""

    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


# --- the permit's state ---------------------------------------------------------------------

def _permit_detail(permit: DataPermit, phase: DataPermitPhase) -> str:
    spec = permit.spec
    if phase == DataPermitPhase.REVOKED:
        return f"revoked: {spec.revocation_reason}"
    if phase == DataPermitPhase.EXPIRED:
        return f"spec.notAfter {spec.not_after.isoformat()} has passed"
    if phase == DataPermitPhase.SUSPENDED:
        return f"suspended: {spec.suspension_reason}"
    if phase == DataPermitPhase.PENDING and spec.not_before is not None:
        return f"valid from spec.notBefore {spec.not_before.isoformat()}"
    return phase.value


def permit_active_denial(ws: Workspace, permit: DataPermit, now: datetime) -> Denial | None:
    phase = permit.phase_at(now)
    if phase == DataPermitPhase.ACTIVE:
        return None
    return Denial(Reason.PERMIT_NOT_ACTIVE, msg.PERMIT_NOT_ACTIVE.format(
        permit=permit.name, phase=phase.value, detail=_permit_detail(permit, phase)))


def membership_denial(ws: Workspace, permit: DataPermit) -> Denial | None:
    """The workspace's members and datasets are within the permit."""
    subjects = [m.subject for m in permit.spec.members]
    for subject in ws.spec.members:
        if not subject_in(subject, subjects):
            return Denial(Reason.MEMBER_NOT_IN_PERMIT, msg.MEMBER_NOT_IN_PERMIT.format(
                subject=subject, permit=permit.name))
    granted = permit.spec.datasets
    for dataset in ws.spec.datasets:
        if dataset not in granted:
            return Denial(Reason.DATASET_NOT_IN_PERMIT, msg.DATASET_NOT_IN_PERMIT.format(
                dataset=dataset, permit=permit.name, granted=", ".join(granted)))
    return None


def tool_denial(ws: Workspace, tool: Tool | None, available: Iterable[str] = ()) -> Denial | None:
    """The tool exists, is approved and fits the request (GPUs need a GPU-capable tool)."""
    if tool is None:
        names = ", ".join(sorted(available)) or "none is registered yet"
        return Denial(Reason.TOOL_NOT_FOUND, msg.TOOL_NOT_FOUND.format(tool=ws.spec.tool, available=names))
    phase, reason, detail = tool.effective_phase()
    if phase != ToolPhase.APPROVED:
        return Denial(Reason.TOOL_REVOKED if phase == ToolPhase.REVOKED else Reason.TOOL_NOT_APPROVED,
                      msg.TOOL_NOT_APPROVED.format(tool=tool.name, phase=phase.value, detail=detail))
    if ws.gpu_count and not tool.spec.gpu_capable:
        return Denial(Reason.TOOL_NOT_GPU_CAPABLE, msg.TOOL_NOT_GPU_CAPABLE.format(tool=tool.name))
    return None


# --- ceilings -------------------------------------------------------------------------------

def _holders(held: Holdings) -> str:
    return f" ({', '.join(sorted(held.running))})" if held.running else ""


def ceiling_denial(ws: Workspace, permit: DataPermit, others: Iterable[Workspace]) -> Denial | None:
    """CPU, memory and GPUs per model fit the permit's ceilings minus what its other running
    workspaces hold; storage fits minus what all its other workspaces hold. A stopped
    workspace holds no compute, but may not ask for more than the whole ceiling."""
    ceilings = permit.spec.ceilings
    held = Holdings.of(others, permit.name, exclude=ws.name)
    compute_held = held if ws.spec.running else Holdings()

    gpus = ws.spec.resources.gpus
    if gpus is not None:
        permitted = {g.model: g.count for g in ceilings.gpus}
        if gpus.model not in permitted:
            listing = ", ".join(f"{m} x{c}" for m, c in permitted.items()) or "none"
            return Denial(Reason.GPU_MODEL_NOT_PERMITTED, msg.GPU_MODEL_NOT_PERMITTED.format(
                model=gpus.model, permit=permit.name, permitted=listing))
        used = compute_held.gpus.get(gpus.model, 0)
        left = permitted[gpus.model] - used
        if gpus.count > left:
            return Denial(Reason.CEILING_EXCEEDED, msg.GPU_CEILING_EXCEEDED.format(
                requested=gpus.count, model=gpus.model, permit=permit.name, ceiling=permitted[gpus.model],
                held=used, holders=_holders(compute_held), left=max(left, 0)))

    for what, unit, requested_raw, ceiling_raw, used in (
        ("cpu", "", ws.spec.resources.cpu, ceilings.cpu, compute_held.cpu),
        ("memory", "bytes", ws.spec.resources.memory, ceilings.memory, compute_held.memory),
    ):
        requested, ceiling = parse_quantity(requested_raw), parse_quantity(ceiling_raw)
        left = ceiling - used
        if requested > left:
            return Denial(Reason.CEILING_EXCEEDED, msg.CEILING_EXCEEDED.format(
                what=what, requested=requested_raw, permit=permit.name,
                ceiling=format_quantity(ceiling, unit), held=format_quantity(used, unit),
                holders=_holders(compute_held), left=format_quantity(max(left, Decimal(0)), unit)))

    storage_requested = 2 * parse_quantity(ws.spec.storage.size)
    storage_ceiling = parse_quantity(ceilings.storage)
    storage_left = storage_ceiling - held.storage
    if storage_requested > storage_left:
        per_volume = max(storage_left / 2, Decimal(0))
        return Denial(Reason.CEILING_EXCEEDED, msg.STORAGE_CEILING_EXCEEDED.format(
            requested=ws.spec.storage.size, permit=permit.name,
            ceiling=format_quantity(storage_ceiling, "bytes"), held=format_quantity(held.storage, "bytes"),
            left=format_quantity(max(storage_left, Decimal(0)), "bytes"),
            per_volume=format_quantity(per_volume.to_integral_value(), "bytes")))
    return None


def workspace_count_denial(ws: Workspace, permit: DataPermit, others: Iterable[Workspace]) -> Denial | None:
    held = Holdings.of(others, permit.name, exclude=ws.name)
    limit = permit.spec.ceilings.max_workspaces
    if held.count + 1 > limit:
        return Denial(Reason.WORKSPACE_LIMIT_REACHED, msg.WORKSPACE_LIMIT_REACHED.format(
            permit=permit.name, count=held.count, limit=limit))
    return None


# --- the kinds ------------------------------------------------------------------------------

def _only_stops(new: Workspace, old: Workspace) -> bool:
    """The change stops the workspace and does nothing else: always allowed (the reconciler
    does this when a permit expires; refusing it would keep a server running)."""
    return (not new.spec.running
            and new.spec.model_copy(update={"running": old.spec.running}) == old.spec)


def workspace_denials(
    ws: Workspace,
    *,
    old: Workspace | None,
    permit: DataPermit | None,
    expected_namespace: str,
    tool: Tool | None,
    available_tools: Iterable[str] = (),
    others: Iterable[Workspace] = (),
    now: datetime,
) -> Iterator[Denial]:
    """Every reason to refuse the Workspace, most fundamental first."""
    if old is not None and (old.spec == ws.spec or _only_stops(ws, old)):
        return
    if permit is None:
        yield Denial(Reason.PERMIT_NOT_FOUND, msg.PERMIT_NOT_FOUND.format(permit=ws.spec.permit))
        return
    if ws.namespace != expected_namespace:
        yield Denial(Reason.WRONG_NAMESPACE, msg.WRONG_NAMESPACE.format(
            namespace=ws.namespace, permit=permit.name, expected=expected_namespace))
        return
    if old is None or ws.spec.running:
        if (denial := permit_active_denial(ws, permit, now)) is not None:
            yield denial
    others = list(others)
    for denial in (membership_denial(ws, permit), tool_denial(ws, tool, available_tools),
                   ceiling_denial(ws, permit, others),
                   workspace_count_denial(ws, permit, others) if old is None else None):
        if denial is not None:
            yield denial


def check_workspace(ws: Workspace, **context) -> Denial | None:
    """The first reason to refuse the Workspace, or None. Arguments as :func:`workspace_denials`."""
    return next(workspace_denials(ws, **context), None)


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def check_output_review(
    review: OutputReview,
    *,
    username: str,
    gateway_username: str,
    workspace: Workspace | None,
    permit: DataPermit | None,
    now: datetime,
) -> Denial | None:
    """Only the egress gateway creates OutputReviews, for a member of an existing workspace
    whose permit is active."""
    if username != gateway_username:
        return Denial(Reason.NOT_GATEWAY, msg.NOT_EGRESS_GATEWAY.format(user=username, gateway=gateway_username))
    if workspace is None:
        return Denial(Reason.INVALID_SPEC, msg.OUTPUT_WORKSPACE_NOT_FOUND.format(
            workspace=review.spec.workspace, namespace=review.namespace))
    if review.spec.requester not in workspace.spec.members:
        return Denial(Reason.MEMBER_NOT_IN_PERMIT, msg.REQUESTER_NOT_MEMBER.format(
            requester=review.spec.requester, workspace=workspace.name))
    phase = permit.phase_at(now) if permit is not None else None
    if permit is None or phase != DataPermitPhase.ACTIVE:
        return Denial(Reason.PERMIT_NOT_ACTIVE, msg.EXPORT_PERMIT_NOT_ACTIVE.format(
            permit=workspace.spec.permit, workspace=workspace.name,
            phase=phase.value if phase else "missing"))
    member = permit.member(review.spec.requester)
    if member is None:
        return Denial(Reason.MEMBER_NOT_IN_PERMIT, msg.REQUESTER_NOT_IN_PERMIT.format(
            requester=review.spec.requester, permit=permit.name, workspace=workspace.name))
    if member.role != MemberRole.RESEARCHER:
        return Denial(Reason.MEMBER_NOT_IN_PERMIT, msg.REQUESTER_NOT_RESEARCHER.format(
            requester=review.spec.requester, role=member.role.value, permit=permit.name))
    return None


def check_data_permit(
    permit: DataPermit,
    *,
    old: DataPermit | None,
    existing_datasets: Iterable[str],
    other_permits: Iterable[DataPermit] = (),
) -> Denial | None:
    """The datasets the permit names exist (only newly added ones are checked on update, so a
    permit can still be edited, suspended or revoked after a dataset is withdrawn); the permit
    id is not used by another DataPermit."""
    if old is not None and old.spec == permit.spec:
        return None
    existing = set(existing_datasets)
    before = set(old.spec.datasets) if old is not None else set()
    for dataset in permit.spec.datasets:
        if dataset not in before and dataset not in existing:
            return Denial(Reason.DATASET_NOT_FOUND, msg.DATASET_NOT_FOUND.format(dataset=dataset))
    if old is None:
        for other in other_permits:
            if (other.name != permit.name and other.spec.permit_id == permit.spec.permit_id
                    and other.metadata.deletion_timestamp is None):
                return Denial(Reason.INVALID_SPEC, msg.PERMIT_ID_TAKEN.format(
                    permit_id=permit.spec.permit_id, other=other.name))
    return None
