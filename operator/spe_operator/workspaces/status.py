"""The Workspace's status from what was decided (gates) and what is observed (the pod):
phase, conditions, URL, node. Pure: the clock is an argument.

Phases: Stopped (spec.running false), Blocked (running wanted but a gate fails), Pending
(the scheduler cannot place the server: its message is in the Scheduled condition), Starting
(scheduled, not ready yet), Running (ready; ``status.url`` set, which the hub waits for).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spe_api import ConditionType, Reason, Workspace, WorkspacePhase, WorkspaceStatus, set_condition
from spe_api.reasons import WorkspaceMessage as M

from . import names
from .checks import Gates
from .idle import last_activity


# The scheduler's words when a pod's claims are not bound yet (VolumeBinding plugin).
UNBOUND_CLAIMS = "unbound immediate PersistentVolumeClaims"


@dataclass(frozen=True)
class PodView:
    """What the status needs of the server's pod."""

    name: str
    node: str | None = None
    scheduled: bool | None = None  # PodScheduled: True / False / not reported
    scheduled_reason: str | None = None
    scheduled_message: str | None = None
    ready: bool = False
    deleting: bool = False
    # (dataset, problem) of a verifying init container that failed, and the datasets verified
    verify_failure: tuple[str, str] | None = None
    verified: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()  # the claims its volumes name (which dataset revisions it mounts)

    def dataset_revision(self, dataset: str) -> int | None:
        for claim in self.claims:
            revision = names.revision_of_dataset_claim(dataset, claim)
            if revision is not None:
                return revision
        return None

    @property
    def waiting_for_volumes(self) -> bool:
        """The scheduler only waits for the claims to be bound (a moment, normally): starting,
        not short of resources."""
        return bool(self.scheduled_message) and UNBOUND_CLAIMS in (self.scheduled_message or "")

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> "PodView":
        md, spec, st = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {}) or {}
        conds = {c.get("type"): c for c in st.get("conditions", []) or []}
        sched = conds.get("PodScheduled")
        ready = conds.get("Ready")
        return cls(
            name=md.get("name", ""),
            node=spec.get("nodeName") or None,
            scheduled=None if sched is None else sched.get("status") == "True",
            scheduled_reason=(sched or {}).get("reason"),
            scheduled_message=(sched or {}).get("message"),
            ready=bool(ready and ready.get("status") == "True") and st.get("phase") == "Running",
            deleting=md.get("deletionTimestamp") is not None,
            verify_failure=_verify_failure(st),
            verified=tuple(sorted(_verified(st))),
            claims=tuple(v["persistentVolumeClaim"].get("claimName", "") for v in spec.get("volumes") or ()
                         if v.get("persistentVolumeClaim")),
        )


# What a person needs of a failed verification: the dataset (from the container's name) and
# the first problems spe-ingest printed (its termination message: the log's tail), kept short.
VERIFY_PROBLEM_PREFIX = "spe-ingest: verify: "
MAX_PROBLEMS = 3
MAX_PROBLEM_CHARS = 400


def _terminated(cs: dict[str, Any]) -> dict[str, Any] | None:
    """The container's failed run: now, or the last one while it waits to be restarted."""
    for state in (cs.get("state") or {}, cs.get("lastState") or {}):
        term = state.get("terminated")
        if term and term.get("exitCode") not in (None, 0):
            return term
    return None


def verify_problem(message: str, exit_code: Any) -> str:
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    problems = [ln[len(VERIFY_PROBLEM_PREFIX):] for ln in lines if ln.startswith(VERIFY_PROBLEM_PREFIX)]
    if problems:
        text = "; ".join(problems[:MAX_PROBLEMS])
        if len(problems) > MAX_PROBLEMS:
            text += f" (and {len(problems) - MAX_PROBLEMS} more)"
    else:
        text = (lines[-1] if lines else "") or f"spe-ingest verify exited with {exit_code}"
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS - 1] + "…"


def _verify_failure(st: dict[str, Any]) -> tuple[str, str] | None:
    for cs in st.get("initContainerStatuses") or ():
        dataset = names.dataset_of_verify_container(cs.get("name", ""))
        term = _terminated(cs) if dataset else None
        if dataset and term is not None and not (cs.get("state") or {}).get("terminated", {}).get("exitCode") == 0:
            return dataset, verify_problem(term.get("message", ""), term.get("exitCode"))
    return None


def _verified(st: dict[str, Any]) -> list[str]:
    out = []
    for cs in st.get("initContainerStatuses") or ():
        dataset = names.dataset_of_verify_container(cs.get("name", ""))
        term = (cs.get("state") or {}).get("terminated") or {}
        if dataset and term.get("exitCode") == 0:
            out.append(dataset)
    return out


@dataclass(frozen=True)
class StatusInputs:
    ws: Workspace
    gates: Gates
    pod: PodView | None
    url: str
    now: datetime
    stop_reason: str | None = None  # annotation the operator set when it stopped the server
    apply_error: str | None = None


def _phase_and_ready(i: StatusInputs) -> tuple[WorkspacePhase, bool, str, str]:
    """(phase, ready, Ready reason, Ready message)."""
    ws, pod = i.ws, i.pod
    if not ws.spec.running:
        # Why it is stopped matters more than whether its pod is still terminating.
        if i.stop_reason == Reason.IDLE_TIMEOUT:
            return (WorkspacePhase.STOPPED, False, Reason.IDLE_TIMEOUT,
                    M.STOPPED_IDLE.format(minutes=ws.spec.idle_timeout_minutes))
        if i.stop_reason == Reason.GPU_IDLE:
            usage = ws.status.gpu_usage
            return (WorkspacePhase.STOPPED, False, Reason.GPU_IDLE, M.STOPPED_GPU_IDLE.format(
                threshold=usage.threshold_percent if usage else "the agent's", minutes=ws.spec.idle_timeout_minutes))
        if not i.gates.permit.ok:
            return WorkspacePhase.STOPPED, False, i.gates.permit.reason, i.gates.permit.message
        if pod is not None:
            return WorkspacePhase.STOPPED, False, Reason.STOPPING, M.STOPPING
        return WorkspacePhase.STOPPED, False, Reason.STOPPED, M.STOPPED
    failure = i.gates.first_failure
    if failure is not None:
        return WorkspacePhase.BLOCKED, False, failure.reason, M.BLOCKED.format(detail=failure.message)
    if i.apply_error:
        return WorkspacePhase.BLOCKED, False, Reason.APPLY_FAILED, i.apply_error
    if pod is None or pod.deleting:
        return WorkspacePhase.STARTING, False, Reason.STARTING, M.WAITING_FOR_POD
    if pod.verify_failure is not None:
        dataset, problem = pod.verify_failure
        return (WorkspacePhase.BLOCKED, False, Reason.DATASET_VERIFICATION_FAILED,
                M.DATASET_VERIFICATION_FAILED.format(dataset=dataset, problem=problem))
    if pod.scheduled is False and not pod.waiting_for_volumes:
        return (WorkspacePhase.PENDING, False, pod.scheduled_reason or Reason.UNSCHEDULABLE,
                pod.scheduled_message or "The scheduler has not placed the server yet.")
    if pod.scheduled is False:
        return WorkspacePhase.STARTING, False, Reason.STARTING, M.WAITING_FOR_VOLUMES
    if not pod.ready:
        return WorkspacePhase.STARTING, False, Reason.STARTING, M.STARTING.format(node=pod.node or "(not yet chosen)")
    return WorkspacePhase.RUNNING, True, Reason.SERVER_READY, M.SERVER_READY.format(url=i.url, node=pod.node)


def _scheduled(i: StatusInputs) -> tuple[str, str, str]:
    pod = i.pod
    if pod is None or not i.ws.spec.running:
        if i.ws.spec.running:
            return "Unknown", Reason.POD_NOT_CREATED, M.WAITING_FOR_POD
        return "False", Reason.STOPPED, M.NOT_SCHEDULED_STOPPED
    if pod.scheduled is True:
        return "True", Reason.SCHEDULED, M.SCHEDULED.format(node=pod.node)
    if pod.scheduled is False:
        return "False", pod.scheduled_reason or Reason.UNSCHEDULABLE, pod.scheduled_message or ""
    return "Unknown", Reason.STARTING, M.WAITING_FOR_POD


def _verified_condition(i: StatusInputs) -> tuple[str, str, str]:
    """DatasetsVerified, from the server pod's verifying init containers."""
    pod = i.pod if i.ws.spec.running else None
    if pod is not None and pod.verify_failure is not None:
        dataset, problem = pod.verify_failure
        return "False", Reason.DATASET_VERIFICATION_FAILED, M.DATASET_VERIFICATION_FAILED.format(
            dataset=dataset, problem=problem)
    if pod is not None and set(i.ws.spec.datasets) <= set(pod.verified):
        return "True", Reason.DATASETS_VERIFIED, M.DATASETS_VERIFIED.format(
            datasets=", ".join(i.ws.spec.datasets))
    return "Unknown", Reason.VERIFICATION_PENDING, M.VERIFICATION_PENDING


def build_status(i: StatusInputs) -> WorkspaceStatus:
    """The new status, keeping transition times of unchanged conditions and ``startedAt``."""
    ws, now = i.ws, i.now
    gen = ws.generation
    old = ws.status
    conditions = list(old.conditions)
    for gate in i.gates.all():
        conditions = set_condition(conditions, gate.type, gate.ok, gate.reason, gate.message, gen, now)
    if ws.spec.datasets:
        v_status, v_reason, v_message = _verified_condition(i)
        conditions = set_condition(conditions, ConditionType.DATASETS_VERIFIED, v_status, v_reason, v_message,
                                   gen, now)
    s_status, s_reason, s_message = _scheduled(i)
    conditions = set_condition(conditions, ConditionType.SCHEDULED, s_status, s_reason, s_message, gen, now)
    phase, ready, r_reason, r_message = _phase_and_ready(i)
    conditions = set_condition(conditions, ConditionType.READY, ready, r_reason, r_message, gen, now)

    running = phase == WorkspacePhase.RUNNING
    started_at = (old.started_at or now) if running else old.started_at
    if running and old.phase != WorkspacePhase.RUNNING:
        started_at = now
    pod = i.pod if ws.spec.running else None
    return WorkspaceStatus(
        observed_generation=gen,
        conditions=conditions,
        message=r_message,
        phase=phase,
        url=i.url if running else None,
        node=pod.node if pod is not None and pod.scheduled else None,
        gpus=ws.gpu_count if pod is not None and pod.scheduled else None,
        started_at=started_at,
        last_activity=last_activity(ws, started_at),
        gpu_usage=old.gpu_usage,  # the GPU agent's (spe-gpu-agent), carried unchanged
    )


def status_patch(new: WorkspaceStatus) -> dict[str, Any]:
    """A merge patch of ``status`` that also clears the optional fields now absent."""
    body = new.to_dict()
    body.pop("gpuUsage", None)  # the GPU agent's to write, never the operator's
    for field in ("url", "node", "gpus", "startedAt", "lastActivity", "message"):
        body.setdefault(field, None)
    return {"status": body}


def status_changed(old: WorkspaceStatus, new: WorkspaceStatus) -> bool:
    return old.to_dict() != new.to_dict()


