"""The gateway's store on the Kubernetes API.

- DataPermit and Workspace are read through the shared models (``spe_api``).
- An OutputReview holds the spec (immutable, as submitted) and the status the cluster's
  people read (phase, checks, votes once decided, approvals, expiry), projected from the
  gateway's own record.
- The gateway's full record of a request (rounds, per-file ballots with private comments,
  history, release) lives in a companion Secret ``<review>-egress`` owned by the
  OutputReview, so reviewers' private comments and undecided votes are not in an object
  that every reader of OutputReviews sees, and the Secret's resourceVersion gives
  optimistic concurrency for every change.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone

from spe_api import OutputReviewPhase
from spe_kube import ApiError, KubeClient, load_kubeconfig

from .checks_adapter import Thresholds
from .store import LABEL_MANAGED_BY, LABEL_REQUESTER, Conflict, ExportPolicy, PermitInfo, WorkspaceInfo

log = logging.getLogger("spe_egress.kube")

OR_KIND = ("spe.ehds.io/v1alpha1", "OutputReview")
PERMIT_KIND = ("spe.ehds.io/v1alpha1", "DataPermit")
WS_KIND = ("spe.ehds.io/v1alpha1", "Workspace")
SECRET_KIND = ("v1", "Secret")
STATE_KEY = "state.json"
STATE_SUFFIX = "-egress"
MANAGED_BY = "spe-egress"
MAX_STATUS_CHECKS = 5000   # OutputReview status.checks maxItems
MAX_STATUS_VOTES = 20      # OutputReview status.votes maxItems
FIELD_MANAGER = "spe-egress"


def _accepted_phases() -> set[str]:
    return {p.value for p in OutputReviewPhase}


def permit_from_manifest(body: dict, now: datetime | None = None) -> PermitInfo:
    from spe_api import DataPermit, MemberRole
    from spe_api.quantity import parse_quantity
    dp = DataPermit.from_manifest(body)
    now = now or datetime.now(timezone.utc)
    implied = dp.phase_at(now).value
    recorded = dp.status.phase.value if dp.status.phase else None
    # Active only when the operator says so and the spec still implies it.
    phase = implied if implied != "Active" else (recorded or "Pending")
    pol = dp.spec.export_policy
    d = pol.disclosure
    thresholds = Thresholds(allowed_types=list(pol.allowed_file_types), max_file_bytes=int(parse_quantity(pol.max_file_size)),
                            min_cell_count=d.min_cell_count, dominance_n=d.dominance.n, dominance_k=d.dominance.k,
                            p_ratio=d.p_ratio, zeros_disclosive=d.zeros_disclosive,
                            allow_record_level=pol.record_level_outputs.allowed)
    return PermitInfo(
        name=dp.name, phase=phase,
        members=frozenset(m.subject for m in dp.spec.members if m.role == MemberRole.RESEARCHER),
        datasets=tuple(dp.spec.datasets), namespace=dp.target_namespace,
        policy=ExportPolicy(reviewers_required=pol.reviewers_required, retention_days=pol.retention_days,
                            thresholds=thresholds))


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
    def __init__(self, kube: KubeClient, *, state_suffix: str = STATE_SUFFIX):
        self.kube = kube
        self.suffix = state_suffix

    @classmethod
    def from_kubeconfig(cls, path: str | None = None) -> "KubeStore":
        return cls(KubeClient(load_kubeconfig(path), field_manager=FIELD_MANAGER))

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

    # --- the record ----------------------------------------------------------------------------

    def _state_name(self, review: str) -> str:
        return review + self.suffix

    async def _state(self, namespace: str, review: str) -> dict | None:
        return await self.kube.get_or_none(SECRET_KIND, self._state_name(review), namespace)

    @staticmethod
    def _decode(secret: dict | None) -> dict:
        if not secret:
            return {}
        raw = (secret.get("data") or {}).get(STATE_KEY)
        return json.loads(base64.b64decode(raw)) if raw else {}

    def _doc(self, review: dict, secret: dict | None) -> dict:
        doc = {k: review[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        doc["metadata"] = dict(review["metadata"])
        doc["status"] = self._decode(secret)
        doc["metadata"]["resourceVersion"] = (secret or {}).get("metadata", {}).get("resourceVersion", "")
        return doc

    async def create_review(self, obj: dict) -> dict:
        created = await self.kube.create(obj)
        md = created["metadata"]
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": self._state_name(md["name"]), "namespace": md["namespace"],
                               "labels": {LABEL_MANAGED_BY: MANAGED_BY,
                                          LABEL_REQUESTER: md.get("labels", {}).get(LABEL_REQUESTER, "")},
                               "ownerReferences": [{"apiVersion": created["apiVersion"], "kind": created["kind"],
                                                    "name": md["name"], "uid": md["uid"],
                                                    "controller": True, "blockOwnerDeletion": True}]},
                  "data": {STATE_KEY: base64.b64encode(b"{}").decode()}}
        sec = await self.kube.create(secret)
        return self._doc(created, sec)

    async def get_review(self, namespace: str, name: str) -> dict | None:
        review = await self.kube.get_or_none(OR_KIND, name, namespace)
        if review is None:
            return None
        return self._doc(review, await self._state(namespace, name))

    async def _namespaces(self) -> list[str]:
        """The permits' namespaces: the gateway's rights are granted there (a RoleBinding the
        operator writes per permit), never cluster-wide."""
        out = set()
        for body in await self.kube.list(PERMIT_KIND):
            ns = (body.get("status") or {}).get("namespace") or f"spe-{body['metadata']['name']}"
            out.add(ns)
        return sorted(out)

    async def _list_in(self, namespace: str, label_selector: str, field_selector: str | None = None
                       ) -> list[dict]:
        try:
            reviews = await self.kube.list(OR_KIND, namespace, label_selector=label_selector,
                                           field_selector=field_selector)
            if not reviews:
                return []
            secrets = {s["metadata"]["name"]: s
                       for s in await self.kube.list(SECRET_KIND, namespace, label_selector=label_selector)}
        except ApiError as e:
            if e.status in (403, 404):  # a permit whose namespace is gone or not (yet) bound to us
                return []
            raise
        return [self._doc(r, secrets.get(self._state_name(r["metadata"]["name"]))) for r in reviews]

    async def find_review(self, name: str) -> dict | None:
        sel = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        for ns in await self._namespaces():
            found = await self._list_in(ns, sel, f"metadata.name={name}")
            if found:
                return found[0]
        return None

    async def list_reviews(self, *, requester: str | None = None) -> list[dict]:
        sel = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        out = []
        for ns in await self._namespaces():
            out.extend(d for d in await self._list_in(ns, sel)
                       if requester is None or d["spec"].get("requester") == requester)
        return out

    async def replace_status(self, obj: dict) -> dict:
        md = obj["metadata"]
        ns, name = md["namespace"], md["name"]
        state = obj.get("status", {})
        patch = {"metadata": {"resourceVersion": md.get("resourceVersion") or None},
                 "data": {STATE_KEY: base64.b64encode(json.dumps(state, sort_keys=True).encode()).decode()}}
        try:
            sec = await self.kube.merge_patch(SECRET_KIND, self._state_name(name), patch, ns)
        except ApiError as e:
            if e.conflict:
                raise Conflict(str(e)) from None
            raise
        try:
            review = await self.kube.merge_patch(OR_KIND, name, {"status": project_status(state)}, ns,
                                                 subresource="status")
        except ApiError as e:  # the record is written; the projection is repaired on the next change
            log.error("projecting %s/%s status failed: %s", ns, name, e)
            review = await self.kube.get(OR_KIND, name, ns)
        return self._doc(review, sec)
