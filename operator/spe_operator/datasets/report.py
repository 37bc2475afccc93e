"""From what the operator observes to the Dataset's status (pure).

The ingest tells the operator what it did through its container's *termination message*: a
compact JSON summary (``spe-ingest run --summary-file /dev/termination-log``) that the kubelet
copies into the pod's status. That keeps the Job without any API access (no token, no Role),
is bounded (4096 bytes, which the summary respects), survives the container, and is read with
the pod — which the operator reads anyway to follow the Job. The full ``report.json`` stays on
the dataset's volume. A message that is not such a summary (a crash: the policy
``FallbackToLogsOnError`` puts the log's tail there) is shown as the failure's detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spe_api import ConditionType, Dataset, DatasetCounts, DatasetPhase, DatasetStatus, set_condition
from spe_api.reasons import DatasetMessage as M
from spe_api.reasons import DatasetReason as R

from . import names as n


def job_outcome(job: dict[str, Any] | None) -> str | None:
    """``Complete``, ``Failed`` or None (absent or still running) from the Job's conditions."""
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    return None


def job_failure_message(job: dict[str, Any]) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return cond.get("message") or cond.get("reason") or "the Job failed"
    return "the Job failed"


def terminated(pod: dict[str, Any], container: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for entry in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if entry.get("name") == container:
            state = entry.get("state") or {}
            return state.get("terminated") or (entry.get("lastState") or {}).get("terminated")
    return None


def ingest_termination(pods: list[dict[str, Any]], *, succeeded: bool) -> dict[str, Any] | None:
    """The ingest container's termination record of the newest pod that ran it to the end
    (exit 0 when ``succeeded``, otherwise the newest non-zero exit)."""
    ordered = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    for pod in ordered:
        term = terminated(pod, n.CONTAINER_INGEST)
        if term is not None and (term.get("exitCode") == 0) == succeeded:
            return term
    return None


def parse_summary(message: str | None) -> dict[str, Any] | None:
    if not message:
        return None
    try:
        doc = json.loads(message)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "status" in doc else None


def counts_from(summary: dict[str, Any]) -> DatasetCounts:
    c, outcomes = summary.get("counts") or {}, summary.get("outcomes") or {}
    return DatasetCounts(patients=c.get("patients", 0), studies=c.get("studies", 0), series=c.get("series", 0),
                         instances=c.get("inputs", 0), accepted=c.get("accepted", 0),
                         rejected=c.get("rejected", 0), quarantined=c.get("quarantined", 0),
                         dropped=c.get("dropped", 0) + c.get("duplicate", 0),
                         rejected_by_reason=dict(outcomes.get("rejected") or {}))


@dataclass
class Observed:
    """What one reconcile saw of a Dataset's current revision."""

    revision: int
    problem: tuple[DatasetPhase, str] | None = None  # a spec or setting that stops the ingest
    claim: dict[str, Any] | None = None
    shards: int = 1
    shard_job: dict[str, Any] | None = None
    final_job: dict[str, Any] | None = None
    shard_pods: list[dict[str, Any]] = field(default_factory=list)
    final_pods: list[dict[str, Any]] = field(default_factory=list)
    files_processed: int | None = None


@dataclass
class Verdict:
    phase: DatasetPhase
    reason: str
    message: str
    summary: dict[str, Any] | None = None
    claim_state: str | None = None  # the revision claim's datasetvolume state label


def _progress(files: int | None) -> str:
    return f", {files} files processed" if files is not None else ""


def verdict(ds: Dataset, obs: Observed) -> Verdict:
    """The phase of the Dataset's current revision, why, and the claim's state (pure)."""
    rev = obs.revision
    if obs.problem is not None:
        phase, message = obs.problem
        return Verdict(phase, R.PENDING if phase == DatasetPhase.PENDING else R.INVALID, message)
    if obs.shards > 1 and obs.final_job is None:
        job = obs.shard_job
        if job is None:
            return Verdict(DatasetPhase.PENDING, R.PENDING, M.SOURCE_MISSING.format(
                namespace=ds.spec.source.claim_namespace, claim=ds.spec.source.claim_name))
        if job_outcome(job) == "Failed":
            return _failed(ds, obs, job, obs.shard_pods)
        done = ((job.get("status") or {}).get("succeeded") or 0)
        return Verdict(DatasetPhase.INGESTING, R.INGESTING, M.SHARDS.format(
            revision=rev, done=done, total=obs.shards, job=job["metadata"]["name"],
            progress=_progress(obs.files_processed)), claim_state=n.STATE_INGESTING)
    job = obs.final_job
    if job is None:
        return Verdict(DatasetPhase.PENDING, R.PENDING, M.SOURCE_MISSING.format(
            namespace=ds.spec.source.claim_namespace, claim=ds.spec.source.claim_name))
    outcome = job_outcome(job)
    if outcome is None:
        return Verdict(DatasetPhase.INGESTING, R.INGESTING, M.INGESTING.format(
            revision=rev, job=job["metadata"]["name"], progress=_progress(obs.files_processed)),
            claim_state=n.STATE_INGESTING)
    if outcome == "Failed":
        return _failed(ds, obs, job, obs.final_pods)
    term = ingest_termination(obs.final_pods, succeeded=True)
    summary = parse_summary(term.get("message") if term else None)
    if summary is None or summary.get("status") != "accepted" or not summary.get("manifestDigest"):
        return Verdict(DatasetPhase.FAILED, R.NO_REPORT, M.NO_REPORT.format(job=job["metadata"]["name"]),
                       summary, n.STATE_FAILED)
    counts = counts_from(summary)
    if counts.accepted == 0:
        return Verdict(DatasetPhase.QUARANTINED, R.QUARANTINED, M.QUARANTINED.format(
            revision=rev, quarantined=counts.quarantined), summary, n.STATE_FAILED)
    k = summary.get("k") or {}
    return Verdict(DatasetPhase.READY, R.INGESTED, M.READY.format(
        revision=rev, accepted=counts.accepted, inputs=counts.instances,
        efficiency=summary.get("efficiencyPercent", 0), k=k.get("k"), threshold=k.get("threshold"),
        digest=summary["manifestDigest"]), summary, n.STATE_READY)


def _failed(ds: Dataset, obs: Observed, job: dict[str, Any], pods: list[dict[str, Any]]) -> Verdict:
    term = ingest_termination(pods, succeeded=False)
    summary = parse_summary(term.get("message") if term else None)
    if summary is not None and summary.get("status") == "refused":
        k = summary.get("k") or {}
        return Verdict(DatasetPhase.FAILED, R.K_REFUSED, M.REFUSED.format(
            revision=obs.revision, k=k.get("k"), threshold=k.get("threshold"),
            qis=", ".join(k.get("quasiIdentifiers") or []) or "no quasi-identifier",
            classes=k.get("classesBelowThreshold", 0)), summary, n.STATE_FAILED)
    if summary is not None and summary.get("message"):
        detail = summary["message"]
    elif term is not None and (term.get("message") or "").strip():
        detail = " / ".join(line.strip() for line in term["message"].strip().splitlines()[-3:])
    else:
        detail = job_failure_message(job)
    return Verdict(DatasetPhase.FAILED, R.JOB_FAILED, M.FAILED.format(
        revision=obs.revision, job=job["metadata"]["name"], detail=detail), summary, n.STATE_FAILED)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def build_status(ds: Dataset, obs: Observed, v: Verdict, now: datetime) -> DatasetStatus:
    """The whole status the Dataset should carry (pure): nothing in it is taken from the current
    status except the Ingested condition's transition time."""
    first_job = obs.shard_job or obs.final_job
    final_outcome = job_outcome(obs.final_job)
    completed = None
    if final_outcome is not None or job_outcome(obs.shard_job) == "Failed":
        done = obs.final_job if final_outcome else obs.shard_job
        st = done.get("status") or {}
        completed = _time(st.get("completionTime")) or next(
            (_time(c.get("lastTransitionTime")) for c in st.get("conditions") or []
             if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"), None)
    summary = v.summary or {}
    ready = v.phase == DatasetPhase.READY
    counts = counts_from(summary) if summary.get("counts") else None
    k = (summary.get("k") or {}).get("k")
    own = [c for c in ds.status.conditions if c.type == ConditionType.INGESTED]  # nothing else survives
    conditions = set_condition(own, ConditionType.INGESTED, ready, v.reason, v.message, ds.generation, now)
    claim = obs.claim
    return DatasetStatus(
        observed_generation=ds.generation, conditions=conditions, message=v.message, phase=v.phase,
        counts=counts, efficiency_percent=summary.get("efficiencyPercent") if counts else None,
        k_anonymity=k if isinstance(k, int) else None,
        manifest_digest=summary.get("manifestDigest") if ready else None,
        claim_name=claim["metadata"]["name"] if claim and ready else None,
        volume_name=((claim.get("spec") or {}).get("volumeName") or None) if claim and ready else None,
        job_name=(obs.final_job or obs.shard_job or {}).get("metadata", {}).get("name"),
        revision=obs.revision if obs.problem is None else None,
        files_processed=obs.files_processed if v.phase == DatasetPhase.INGESTING else None,
        started_at=_time(((first_job or {}).get("status") or {}).get("startTime")),
        completed_at=completed,
    )


def status_patch(desired: DatasetStatus, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """A merge patch that makes ``current`` exactly ``desired`` (every field the operator does
    not set is removed, so a hand-written value never survives), or None when they agree."""
    want = desired.model_dump(mode="json", by_alias=True, exclude_none=False)
    current = dict(current or {})

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        return value

    if strip(want) == strip(current):
        return None
    patch: dict[str, Any] = dict(want)
    for key in current:
        patch.setdefault(key, None)
    if isinstance(current.get("counts"), dict) and isinstance(want.get("counts"), dict):
        counts = dict(want["counts"])
        old_reasons = current["counts"].get("rejectedByReason") or {}
        reasons = dict(counts.get("rejectedByReason") or {})
        for key in old_reasons:
            reasons.setdefault(key, None)
        counts["rejectedByReason"] = reasons
        for key in current["counts"]:
            counts.setdefault(key, None)
        patch["counts"] = counts
    return {"status": patch}
