"""The gateway's store on the Kubernetes API.

- DataPermit and Workspace are read through the shared models (``spe_api``).
- An OutputReview holds the spec (immutable, as submitted) and the status the cluster's
  people read (phase, checks, votes once decided, approvals, expiry), projected from the
  gateway's own record. It carries the finalizer ``spe.ehds.io/egress-quarantine``: the
  request's quarantined files and record live outside Kubernetes, so deleting the request
  (or its permit, whose namespace takes the request with it) waits until the gateway has
  purged them (``EgressService.reap``).
- The gateway's full record of a request (rounds, per-file ballots with private comments,
  history, release) lives on the gateway's own volume (:class:`RecordFiles`), never in the
  permit's namespace, where the hub may write Secrets and a Secret would be the hub's to
  forge. The record is written first and the OutputReview second; a request whose
  OutputReview could not be made is rolled back, and a record left by a crash in between is
  reaped once it is older than ``orphan_grace_s``.
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime, timezone
from pathlib import Path

from spe_api import OutputReviewPhase
from spe_api.datasetvolume import (LABEL_PSEUDONYMS, PSEUDONYMS_KEY, PSEUDONYMS_NAMESPACE,
                                   pseudonyms_secret_name)
from spe_kube import ApiError, KubeClient, load_kubeconfig

from .checks.pseudonyms import PseudonymSet, parse_digests
from .checks_adapter import Thresholds
from .records_store import RecordFiles
from .store import LABEL_MANAGED_BY, ExportPolicy, PermitInfo, WorkspaceInfo

log = logging.getLogger("spe_egress.kube")

OR_KIND = ("spe.ehds.io/v1alpha1", "OutputReview")
PERMIT_KIND = ("spe.ehds.io/v1alpha1", "DataPermit")
WS_KIND = ("spe.ehds.io/v1alpha1", "Workspace")
SECRET_KIND = ("v1", "Secret")
FINALIZER = "spe.ehds.io/egress-quarantine"
ORPHAN_GRACE_S = 600.0  # a record without its OutputReview this old was left by a crash
MANAGED_BY = "spe-egress"
MAX_STATUS_CHECKS = 5000   # OutputReview status.checks maxItems
MAX_STATUS_VOTES = 20      # OutputReview status.votes maxItems
FIELD_MANAGER = "spe-egress"


def _accepted_phases() -> set[str]:
    return {p.value for p in OutputReviewPhase}


def permit_from_manifest(body: dict, now: datetime | None = None) -> PermitInfo:
    from spe_api import DataPermit, MemberRole
    dp = DataPermit.from_manifest(body)
    now = now or datetime.now(timezone.utc)
    implied = dp.phase_at(now).value
    recorded = dp.status.phase.value if dp.status.phase else None
    # Active only when the operator says so and the spec still implies it.
    phase = implied if implied != "Active" else (recorded or "Pending")
    pol = dp.spec.export_policy
    return PermitInfo(
        name=dp.name, phase=phase,
        members=frozenset(m.subject for m in dp.spec.members if m.role == MemberRole.RESEARCHER),
        everyone=frozenset(m.subject for m in dp.spec.members),
        reviewers=frozenset(pol.reviewers),
        datasets=tuple(dp.spec.datasets), namespace=dp.target_namespace,
        policy=ExportPolicy(reviewers_required=pol.reviewers_required, retention_days=pol.retention_days,
                            thresholds=Thresholds.from_policy(pol)))


def _iso(s: str | None) -> str | None:
    return s or None


def project_status(state: dict) -> dict:
    """The OutputReview status (the shared model's fields) for the gateway's record."""
    phases = _accepted_phases()
    phase = state.get("phase")
    files = state.get("files") or []
    rnd = int(state.get("round", 1))
    checks = []
    for i, f in enumerate((state.get("checks") or {}).get("files", [])):
        fname = files[i]["name"] if i < len(files) else f.get("name", "")
        if not f.get("findings"):
            checks.append({"file": fname, "check": "all", "result": "pass", "message": "no findings"})
        for x in f.get("findings", []):
            sev = str(x.get("severity", "")).upper()
            checks.append({"file": fname, "check": str(x.get("check", ""))[:128],
                           "result": {"BLOCK": "fail", "WARN": "warn"}.get(sev, "pass"),
                           "message": str(x.get("message", ""))[:4096]})
    decided = set(state.get("decidedRounds", []))
    votes = []
    for d in state.get("decisions", []):
        if d.get("round") not in decided:
            continue  # undecided ballots stay in the gateway's record
        ok = all(v["vote"] == "approve" for v in d["votes"])
        public = "; ".join(v["comment"] for v in d["votes"] if v.get("visibility") == "public" and v.get("comment"))
        votes.append({"reviewer": d["reviewer"], "decision": "approve" if ok else "reject",
                      "comment": public[:4096], "at": d["at"]})
    approvals = sum(1 for d in state.get("decisions", []) if d.get("round") == rnd and rnd in decided
                    and all(v["vote"] == "approve" for v in d["votes"]))
    status: dict = {
        "phase": phase if phase in phases else None,
        "permit": state.get("permit"),
        "checks": checks[:MAX_STATUS_CHECKS],
        "votes": votes[-MAX_STATUS_VOTES:],
        "approvals": approvals,
        "approvalsRequired": state.get("reviewersRequired"),
    }
    if phase in ("Approved", "Released"):
        status["decision"] = "approve"
    elif phase == "Rejected":
        status["decision"] = "reject"
    hist = state.get("history", [])
    decided_at = next((h["at"] for h in reversed(hist) if h.get("phase") in ("Approved", "Rejected", "Returned")), None)
    if decided_at:
        status["decidedAt"] = decided_at
    rel = state.get("release")
    if rel and phase in ("Approved", "Released"):
        status["releasedAt"] = decided_at
        status["expiresAt"] = rel.get("expiresAt")
    last = hist[-1] if hist else {}
    status["conditions"] = [{
        "type": "Lifecycle", "status": "True", "reason": phase or "Unknown",
        "message": f"{phase}: {last.get('message', '')}".strip(),
        "lastTransitionTime": last.get("at") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]
    return status


class KubeStore:
    def __init__(self, kube: KubeClient, records: RecordFiles | str | Path, *,
                 orphan_grace_s: float = ORPHAN_GRACE_S):
        self.kube = kube
        self.records = records if isinstance(records, RecordFiles) else RecordFiles(records)
        self.orphan_grace_s = orphan_grace_s

    @classmethod
    def from_kubeconfig(cls, path: str | None, records_dir: str | Path) -> "KubeStore":
        return cls(KubeClient(load_kubeconfig(path), field_manager=FIELD_MANAGER), records_dir)

    async def close(self) -> None:
        await self.kube.close()

    async def get_permit(self, name: str) -> PermitInfo | None:
        body = await self.kube.get_or_none(PERMIT_KIND, name)
        if body is None:
            return None
        try:
            return permit_from_manifest(body)
        except Exception as e:  # noqa: BLE001 - an unreadable permit grants nothing
            log.warning("DataPermit %s cannot be read: %s", name, e)
            return PermitInfo(name=name, phase="Unreadable", members=frozenset())

    async def get_workspace(self, namespace: str, name: str) -> WorkspaceInfo | None:
        body = await self.kube.get_or_none(WS_KIND, name, namespace)
        if body is None:
            return None
        spec = body.get("spec", {})
        return WorkspaceInfo(namespace=namespace, name=name, permit=spec.get("permit", ""),
                             members=frozenset(spec.get("members") or []))

    async def pseudonyms(self, permit: PermitInfo) -> PseudonymSet:
        """The digests of the pseudonyms of the permit's datasets, from their Secrets in
        ``spe-pseudonyms`` (the only Secrets the gateway may read; see
        ``spe_api.datasetvolume``). A dataset without its Secret has not been published (never
        ingested: no workspace can have read it) and adds nothing; a Secret that is not the
        publication's (no label) or that cannot be parsed raises, so the checks block."""
        digests: set[str] = set()
        for dataset in permit.datasets:
            name = pseudonyms_secret_name(dataset)
            secret = await self.kube.get_or_none(SECRET_KIND, name, PSEUDONYMS_NAMESPACE)
            if secret is None:
                log.info("dataset %s has no published pseudonyms (%s/%s)", dataset, PSEUDONYMS_NAMESPACE, name)
                continue
            labels = secret.get("metadata", {}).get("labels") or {}
            if LABEL_PSEUDONYMS not in labels:
                raise ValueError(f"Secret {PSEUDONYMS_NAMESPACE}/{name} lacks the label {LABEL_PSEUDONYMS}")
            raw = (secret.get("data") or {}).get(PSEUDONYMS_KEY)
            if raw is None:
                raise ValueError(f"Secret {PSEUDONYMS_NAMESPACE}/{name} has no key {PSEUDONYMS_KEY}")
            try:
                digests |= parse_digests(base64.b64decode(raw).decode("ascii"))
            except (ValueError, UnicodeDecodeError) as e:
                raise ValueError(f"Secret {PSEUDONYMS_NAMESPACE}/{name}: {e}") from None
        return PseudonymSet(digests=digests)

    # --- the record ----------------------------------------------------------------------------

    def _doc(self, review: dict) -> dict:
        md = review["metadata"]
        state, version = self.records.read(md["namespace"], md["name"])
        doc = {k: review[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        doc["metadata"] = dict(md)
        doc["status"] = state or {}
        doc["metadata"]["resourceVersion"] = str(version) if state is not None else ""
        return doc

    async def create_review(self, obj: dict) -> dict:
        md = obj["metadata"]
        ns, name = md["namespace"], md["name"]
        state = obj.get("status") or {}
        self.records.write(ns, name, state, None)
        body = {k: obj[k] for k in ("apiVersion", "kind", "spec")}
        body["metadata"] = {**md, "finalizers": [FINALIZER]}
        try:
            created = await self.kube.create(body)
        except BaseException:
            self.records.delete(ns, name)  # no review: no record
            raise
        await self._project(ns, name, state)
        return self._doc(created)

    async def get_review(self, namespace: str, name: str) -> dict | None:
        review = await self.kube.get_or_none(OR_KIND, name, namespace)
        if review is None:
            return None
        return self._doc(review)

    async def find_review(self, name: str) -> dict | None:
        ns = self.records.locate(name)
        return await self.get_review(ns, name) if ns else None

    async def _list_all(self) -> list[dict]:
        return await self.kube.list(OR_KIND, label_selector=f"{LABEL_MANAGED_BY}={MANAGED_BY}")

    async def list_reviews(self, *, requester: str | None = None) -> list[dict]:
        out = []
        for r in await self._list_all():
            if r["metadata"].get("deletionTimestamp"):
                continue
            if requester is None or r["spec"].get("requester") == requester:
                out.append(self._doc(r))
        return out

    async def _project(self, ns: str, name: str, state: dict) -> dict | None:
        try:
            return await self.kube.merge_patch(OR_KIND, name, {"status": project_status(state)}, ns,
                                               subresource="status")
        except ApiError as e:  # the record is written; the projection is repaired on the next change
            log.error("projecting %s/%s status failed: %s", ns, name, e)
            return None

    async def replace_status(self, obj: dict) -> dict:
        md = obj["metadata"]
        ns, name = md["namespace"], md["name"]
        state = obj.get("status", {})
        rv = md.get("resourceVersion")
        self.records.write(ns, name, state, int(rv) if rv else 0)
        review = await self._project(ns, name, state) or await self.kube.get(OR_KIND, name, ns)
        return self._doc(review)

    # --- deletion: the finalizer ------------------------------------------------------------------

    async def ended_reviews(self) -> list[tuple[str, str]]:
        """Requests whose files must go: OutputReviews being deleted (held by our finalizer),
        and records whose OutputReview is gone (deleted before it carried the finalizer, or a
        crash between writing the record and creating the review)."""
        live, out = set(), []
        for r in await self._list_all():
            md = r["metadata"]
            live.add((md["namespace"], md["name"]))
            if md.get("deletionTimestamp") and FINALIZER in (md.get("finalizers") or []):
                out.append((md["namespace"], md["name"]))
        for ns, name, age in self.records.all():
            if (ns, name) not in live and age > self.orphan_grace_s:
                if await self.kube.get_or_none(OR_KIND, name, ns) is None:
                    out.append((ns, name))
        return out

    async def forget(self, namespace: str, name: str) -> None:
        """Drop the record and release the OutputReview's finalizer (its files are purged)."""
        self.records.delete(namespace, name)
        review = await self.kube.get_or_none(OR_KIND, name, namespace)
        if review is None:
            return
        fins = review["metadata"].get("finalizers") or []
        if FINALIZER in fins:
            try:
                await self.kube.merge_patch(OR_KIND, name, {"metadata": {
                    "finalizers": [f for f in fins if f != FINALIZER],
                    "resourceVersion": review["metadata"]["resourceVersion"]}}, namespace)
            except ApiError as e:
                if not e.not_found:
                    raise
