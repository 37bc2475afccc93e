"""What a workspace's transitions tell people and the trail: the operator's own stops (idle,
GPU idle) with their Events, the audit records of a start or a stop, and the Events of the
phases a person should see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from spe_api import Reason, Workspace, WorkspacePhase
from spe_api.reasons import WorkspaceMessage as M
from spe_kube import KubeClient, kind_for
from spe_kube.events import NORMAL, WARNING, post_event

from ..audit import AuditHook, AuditUnavailable
from . import names
from .idle import last_activity

WORKSPACE = kind_for("spe.ehds.io/v1alpha1", "Workspace")


async def stop_idle(kube: KubeClient, ws: Workspace, body: dict[str, Any], now: datetime) -> None:
    last = last_activity(ws, ws.status.started_at)
    await kube.merge_patch(WORKSPACE, ws.name, {
        "metadata": {"annotations": {names.ANNOTATION_STOP_REASON: Reason.IDLE_TIMEOUT}},
        "spec": {"running": False}}, ws.namespace)
    await post_event(kube, body, type_=NORMAL, reason=Reason.IDLE_TIMEOUT, message=M.EVENT_IDLE.format(
        minutes=ws.spec.idle_timeout_minutes, last=last.isoformat() if last else "never"), now=now)


async def stop_gpu_idle(kube: KubeClient, ws: Workspace, body: dict[str, Any], now: datetime) -> None:
    usage = ws.status.gpu_usage
    await kube.merge_patch(WORKSPACE, ws.name, {
        "metadata": {"annotations": {names.ANNOTATION_STOP_REASON: Reason.GPU_IDLE}},
        "spec": {"running": False}}, ws.namespace)
    await post_event(kube, body, type_=NORMAL, reason=Reason.GPU_IDLE, message=M.EVENT_GPU_IDLE.format(
        threshold=usage.threshold_percent, since=usage.idle_since.isoformat(),
        minutes=ws.spec.idle_timeout_minutes), now=now)


async def audit_transition(audit: AuditHook, ws: Workspace, new, gates, stop_reason: str | None,
                           scale_down: Callable[[Workspace], Awaitable[None]]) -> None:
    """workspace.started and dataset.mounted when the server becomes Running (fail closed:
    if the trail refuses them, the server is scaled back to 0 (``scale_down``) and the reconcile
    fails, so the hub never sees it Running); workspace.stopped when a Running server stops."""
    old_phase, phase = ws.status.phase, new.phase
    if old_phase == phase:
        return
    target = f"Workspace/{ws.namespace}/{ws.name}"
    if phase == WorkspacePhase.RUNNING:
        try:
            await audit.record("workspace.started", target=target, permit=ws.spec.permit,
                               details={"node": new.node, "gpus": ws.gpu_count, "tool": ws.spec.tool,
                                        "members": list(ws.spec.members)})
            for dataset in ws.spec.datasets:
                await audit.record("dataset.mounted", target=target, permit=ws.spec.permit,
                                   dataset=dataset, details={"path": f"/data/{dataset}", "readOnly": True})
        except AuditUnavailable:
            await scale_down(ws)
            raise
    elif phase == WorkspacePhase.STOPPED and old_phase == WorkspacePhase.RUNNING:
        await audit.record("workspace.stopped", target=target, permit=ws.spec.permit,
                           details={"why": stop_why(stop_reason, gates)})


async def announce(kube: KubeClient, ws: Workspace, body: dict[str, Any], new, gates, stop_reason: str | None,
                   now: datetime) -> None:
    """Events for the transitions a person should see."""
    old_phase, phase = ws.status.phase, new.phase
    if old_phase == phase:
        return
    if phase == WorkspacePhase.RUNNING:
        gpus = f" with {ws.gpu_count} x {ws.gpu_model}" if ws.gpu_count else ""
        await post_event(kube, body, type_=NORMAL, reason=Reason.STARTED,
                         message=M.EVENT_STARTED.format(node=new.node, gpus=gpus, url=new.url), now=now)
    elif phase == WorkspacePhase.STOPPED and old_phase is not None:
        await post_event(kube, body, type_=NORMAL, reason=Reason.STOPPED,
                         message=M.EVENT_STOPPED.format(why=stop_why(stop_reason, gates)), now=now)
    elif phase == WorkspacePhase.BLOCKED:
        failure = gates.first_failure
        await post_event(kube, body, type_=WARNING, reason=failure.reason if failure else Reason.BLOCKED,
                         message=new.message or "", now=now)
    elif phase == WorkspacePhase.PENDING:
        await post_event(kube, body, type_=WARNING, reason=Reason.UNSCHEDULABLE,
                         message=new.message or "", now=now)


def stop_why(stop_reason: str | None, gates) -> str:
    """Why a server stopped, in the words of its Event and its audit record."""
    if stop_reason == Reason.IDLE_TIMEOUT:
        return "idle timeout"
    if stop_reason == Reason.GPU_IDLE:
        return "GPU idle"
    if not gates.permit.ok:
        return gates.permit.message.rstrip(".")
    return "spec.running was set to false"
