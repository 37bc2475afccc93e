"""The gateway's domain logic: requests, checks, votes, release, expiry. No HTTP here.

Every change to a review goes through :meth:`EgressService._update`, which re-reads the
object, verifies its seal, applies a pure mutation, checks the lifecycle, writes the audit
records of the act, seals and writes with optimistic concurrency (retrying on conflict),
under a per-review lock for this process.

- **Sealed records.** Every state the gateway writes carries ``status.seal``, an HMAC-SHA256
  (key derived from the gateway's secret) over the request's namespace, name, spec and state.
  A record that does not verify -- edited, forged, or copied from another request -- is
  refused (``record_tampered``) and audited (``export.tampered``); it never signs a link.
- **Audit fails closed.** The records of an act are written before the act takes effect
  (before the state is written, before a file or bundle is handed out); when the trail cannot
  be written the act is refused (``audit_unavailable``, 503) and nothing changes.
- **Reviewer scope.** A reviewer sees and decides only the requests of permits whose
  ``exportPolicy.reviewers`` name them, and never those of a permit that names them as a
  member. People are compared on one subject (:mod:`.identity`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Callable, Iterable

from spe_api.subjects import same_subject, subject_in

from . import audit as act
from . import checks_adapter, decisions, lifecycle
from .audit import Auditor
from .lifecycle import Phase
from .quarantine import Quarantine
from .records import Problem, Upload, event, label_value, move, parse_iso, status_checks, current_files
from .release import DEFAULT_LINK_TTL_S, build_bundle, release_path
from .staging import Staging, check_file_name
from .store import (API_VERSION, LABEL_MANAGED_BY, LABEL_PERMIT, LABEL_REQUESTER, LABEL_WORKSPACE,
                    Conflict, PermitInfo, Store, WorkspaceInfo, now_iso)

log = logging.getLogger("spe_egress")

MIN_JUSTIFICATION = 10        # OutputReview's spec.justification minimum
SEAL_ALG = "HMAC-SHA256"
CHECK_SLOTS = 1               # checks at once: each holds a request's files in memory
RESUME_PHASES = (Phase.SUBMITTED.value, Phase.CHECKING.value)

AuditEntry = tuple  # (actor, action, target, keyword arguments of Auditor.record)
# (namespace, workspace) a researcher's server token is bound to (see .hub_auth); None for
# callers inside the gateway and the service tests, which name the workspace themselves
Binding = tuple[str, str]


class EgressService:
    def __init__(self, store: Store, quarantine: Quarantine, auditor: Auditor, *, report_key: bytes,
                 link_key: bytes, ledger_dir: str | Path, record_key: bytes | None = None,
                 link_ttl_s: int = DEFAULT_LINK_TTL_S, clock: Callable[[], float] = time.time):
        self.store, self.quarantine, self.audit = store, quarantine, auditor
        self.report_key, self.link_key = report_key, link_key
        # the records' MAC key: GatewayKeys.records; without one, derived from the link key
        self.record_key = record_key or hmac.new(link_key, b"spe-egress review-record mac", hashlib.sha256).digest()
        self.ledger_dir = Path(ledger_dir)
        self.link_ttl_s = link_ttl_s
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        # a check holds a request's files in memory: a few at a time
        self.check_slots = asyncio.Semaphore(CHECK_SLOTS)
        self._tamper_reported: set[tuple[str, str, str]] = set()

    # --- sealed records and the audit trail ------------------------------------------------

    def _mac(self, obj: dict) -> str:
        md = obj["metadata"]
        st = {k: v for k, v in (obj.get("status") or {}).items() if k != "seal"}
        body = json.dumps({"namespace": md["namespace"], "name": md["name"], "spec": obj.get("spec"),
                           "status": st}, sort_keys=True, separators=(",", ":"), default=str).encode()
        return hmac.new(self.record_key, body, hashlib.sha256).hexdigest()

    def _seal(self, obj: dict) -> dict:
        obj["status"]["seal"] = {"alg": SEAL_ALG, "value": self._mac(obj)}
        return obj

    def _sealed(self, obj: dict) -> bool:
        seal = (obj.get("status") or {}).get("seal") or {}
        return seal.get("alg") == SEAL_ALG and hmac.compare_digest(str(seal.get("value", "")), self._mac(obj))

    def _verified(self, obj: dict | None) -> dict | None:
        """The record if its seal verifies; else audit it once and refuse."""
        if obj is None or self._sealed(obj):
            return obj
        md = obj["metadata"]
        key = (md["namespace"], md["name"], str(((obj.get("status") or {}).get("seal") or {}).get("value")))
        if key not in self._tamper_reported:
            self._tamper_reported.add(key)
            log.error("the record of %s/%s does not verify: refused", md["namespace"], md["name"])
            try:
                self.audit.record(act.SYSTEM_ACTOR, act.EXPORT_TAMPERED, f"{md['namespace']}/{md['name']}",
                                  permit=(obj.get("status") or {}).get("permit") or None, outcome="denied",
                                  details={"phase": (obj.get("status") or {}).get("phase")})
            except Exception:  # noqa: BLE001 - it is refused either way
                log.exception("auditing a tampered record failed")
        raise Problem(409, "record_tampered", f"the gateway's record of {md['name']} does not verify (edited or "
                      "forged outside the gateway); it is refused until an administrator investigates")

    def audit_all(self, entries: Iterable[AuditEntry]) -> None:
        """Write the records of an act before it takes effect; if the trail cannot take them,
        the act does not happen."""
        for actor, action, target, kw in entries:
            try:
                self.audit.record(actor, action, target, **kw)
            except Exception as e:  # noqa: BLE001 - any failure to record refuses the act
                log.error("audit record %s on %s could not be written: %s", action, target, e)
                raise Problem(503, "audit_unavailable", "the audit trail cannot be written, so this is not done; "
                              "try again later (operators: check the gateway's audit volume)") from None

    def _audit_failed(self, entries: Iterable[AuditEntry], why: str) -> None:
        """Best effort: an act recorded as done did not take effect after all."""
        for actor, action, target, kw in entries:
            try:
                self.audit.record(actor, action, target, **{**kw, "outcome": "failure",
                                                            "details": {**(kw.get("details") or {}), "error": why}})
            except Exception:  # noqa: BLE001
                log.exception("auditing the failure of %s failed", action)

    async def _get(self, namespace: str, name: str) -> dict | None:
        return self._verified(await self.store.get_review(namespace, name))

    async def _find(self, name: str) -> dict | None:
        return self._verified(await self.store.find_review(name))

    async def _list(self) -> list[dict]:
        out = []
        for o in await self.store.list_reviews():
            try:
                out.append(self._verified(o))
            except Problem:
                continue  # refused and audited; never listed
        return out

    # --- authorisation -------------------------------------------------------------------

    async def authorize_export(self, user: str, namespace: str, workspace: str) -> tuple[WorkspaceInfo, PermitInfo]:
        """May ``user`` export from this workspace? Every refusal is audited."""
        try:
            return await self._authorize_export(user, namespace, workspace)
        except Problem as p:
            self.audit.record(user, act.EXPORT_DENIED, f"{namespace}/{workspace}", outcome="denied",
                              details={"code": p.code, "message": p.message})
            raise

    async def _authorize_export(self, user: str, namespace: str, workspace: str) -> tuple[WorkspaceInfo, PermitInfo]:
        ws = await self.store.get_workspace(namespace, workspace) if namespace and workspace else None
        if ws is None:
            raise Problem(404, "workspace_not_found", f"there is no workspace {namespace}/{workspace}")
        permit = await self.store.get_permit(ws.permit)
        if permit is None:
            raise Problem(403, "permit_not_found", f"workspace {workspace} names permit {ws.permit}, which does not exist")
        if ws.namespace != permit.workspace_namespace:
            raise Problem(403, "wrong_namespace", f"workspace {namespace}/{workspace} is not in permit "
                          f"{permit.name}'s namespace {permit.workspace_namespace}")
        if not permit.has_member(user) or (ws.members and not subject_in(user, ws.members)):
            where = f"permit {permit.name}" if not permit.has_member(user) else f"workspace {ws.name}"
            raise Problem(403, "not_member", f"{user} is not a member of {where}; "
                          "ask the data access committee to add you")
        if not permit.active:
            raise Problem(403, "permit_inactive", f"permit {permit.name} is {permit.phase}, not Active: "
                          "exports are refused")
        return ws, permit

    def ensure_bound(self, user: str, bound: Binding | None, namespace: str, workspace: str) -> None:
        """A researcher acts only on the workspace their server's token is bound to
        (:mod:`.hub_auth`); naming another is refused, audited."""
        if bound is None or (namespace, workspace) == tuple(bound):
            return
        p = Problem(403, "wrong_workspace", f"this notebook server belongs to workspace {bound[0]}/{bound[1]}; "
                    f"it cannot file or follow exports of workspace {namespace}/{workspace}: "
                    "run spe-export in that workspace's own notebook")
        self.audit.record(user, act.EXPORT_DENIED, f"{namespace}/{workspace}", outcome="denied",
                          details={"code": p.code, "message": p.message, "boundTo": f"{bound[0]}/{bound[1]}"})
        raise p

    def check_limits(self, permit: PermitInfo, files: list[Upload]) -> None:
        pol = permit.policy
        if not files:
            raise Problem(400, "no_files", "an export request needs at least one file")
        if len(files) > pol.max_files:
            raise Problem(413, "too_many_files", f"{len(files)} files; permit {permit.name} allows {pol.max_files} per request")
        seen: set[str] = set()
        for f in files:
            check_file_name(f.name, seen)
            seen.add(f.name)
            if len(f.data) > pol.thresholds.max_file_bytes:
                raise Problem(413, "file_too_large", f"{f.name} is {len(f.data)} bytes; permit {permit.name} "
                              f"allows at most {pol.thresholds.max_file_bytes} bytes per file")

    def refuse(self, staging: Staging, p: Problem) -> None:
        """An upload refused while it streamed: audit the refusal and remove what was written."""
        staging.abort()
        try:
            self.audit.record(staging.user, act.EXPORT_DENIED, f"{staging.namespace}/{staging.workspace}",
                              permit=staging.permit.name, outcome="denied",
                              details={"code": p.code, "message": p.message, "request": staging.name})
        except Exception:  # noqa: BLE001 - refused either way
            log.exception("auditing a refused upload failed")

    @staticmethod
    def _stage_all(staging: Staging, files: list[Upload]) -> None:
        for f in files:
            staging.open(f.name)
            staging.write(f.data)
        staging.close_file()

    # --- researcher actions ----------------------------------------------------------------

    async def open_request(self, user: str, namespace: str, workspace: str) -> Staging:
        """Authorise a new request and open its quarantine for the files to stream into."""
        ws, permit = await self.authorize_export(user, namespace, workspace)
        return Staging(self.quarantine, user, namespace, "er-" + secrets.token_hex(5), 1, permit, ws.name,
                       new_request=True)

    async def create_request(self, user: str, namespace: str, workspace: str, justification: str,
                             files: list[Upload]) -> dict:
        staging = await self.open_request(user, namespace, workspace)
        self._stage_within_limits(staging, files)
        return await self.commit_request(staging, justification)

    def _stage_within_limits(self, staging: Staging, files: list[Upload]) -> None:
        """Quarantine ``files`` into ``staging`` within the permit's limits; on any failure the
        staging is refused (audited) or aborted, so nothing half-staged stays behind."""
        try:
            self.check_limits(staging.permit, files)
            self._stage_all(staging, files)
        except Problem as p:
            self.refuse(staging, p)
            raise
        except BaseException:
            staging.abort()
            raise

    async def commit_request(self, staging: Staging, justification: str) -> dict:
        """Make the staged files a request: the audit record, then the review and its record in
        one store write. Whatever fails leaves neither a review nor quarantined files."""
        user, namespace, name, permit = staging.user, staging.namespace, staging.name, staging.permit
        try:
            staging.close_file()
            if not staging.files:
                raise Problem(400, "no_files", "an export request needs at least one file")
            if len(justification.strip()) < MIN_JUSTIFICATION:
                raise Problem(400, "no_justification", "say why these files need to leave and why they are "
                              f"not disclosive (--justification, at least {MIN_JUSTIFICATION} characters)")
        except Problem as p:
            self.refuse(staging, p)
            raise
        spec_files = list(staging.files)
        now = self.clock()
        obj = {"apiVersion": API_VERSION, "kind": "OutputReview",
               "metadata": {"name": name, "namespace": namespace,
                            "labels": {LABEL_PERMIT: permit.name, LABEL_WORKSPACE: staging.workspace,
                                       LABEL_REQUESTER: label_value(user), LABEL_MANAGED_BY: "spe-egress"}},
               "spec": {"requester": user, "workspace": staging.workspace, "files": spec_files,
                        "justification": justification.strip()},
               "status": {"phase": Phase.SUBMITTED.value, "round": 1, "files": spec_files, "permit": permit.name,
                          "reviewersRequired": permit.policy.reviewers_required,
                          "submittedAt": now_iso(now),
                          "history": [event(now, Phase.SUBMITTED, user, "request submitted")], "decisions": []}}
        entries = [(user, act.EXPORT_REQUEST, f"{namespace}/{name}",
                    {"permit": permit.name, "details": {"files": spec_files, "workspace": staging.workspace}})]
        try:
            self.audit_all(entries)
        except Problem:
            staging.abort()
            raise
        try:
            created = await self.store.create_review(self._seal(obj))
        except BaseException as e:
            staging.abort()
            self._audit_failed(entries, f"the request could not be stored: {type(e).__name__}")
            raise
        self._spawn(self.run_checks(namespace, name))
        return created

    async def withdraw(self, user: str, name: str, bound: Binding | None = None) -> dict:
        obj = await self._own(user, name, bound)
        ns = obj["metadata"]["namespace"]

        def mutate(o):
            move(o, Phase.WITHDRAWN, self.clock(), user, "withdrawn by the requester")
        obj = await self._update(ns, name, mutate, lambda o: [
            (user, act.EXPORT_WITHDRAW, f"{ns}/{name}", {"permit": o["status"].get("permit")})])
        self.quarantine.purge(ns, name)
        return obj

    async def open_resubmission(self, user: str, name: str, bound: Binding | None = None) -> Staging:
        obj = await self._own(user, name, bound)
        ns = obj["metadata"]["namespace"]
        if obj["status"].get("phase") != Phase.RETURNED.value:
            raise Problem(409, "not_returned", f"only a returned request can be resubmitted; {name} is "
                          f"{obj['status'].get('phase')}")
        ws, permit = await self.authorize_export(user, ns, obj["spec"]["workspace"])
        return Staging(self.quarantine, user, ns, name, int(obj["status"].get("round", 1)) + 1, permit, ws.name,
                       new_request=False)

    async def resubmit(self, user: str, name: str, justification: str, files: list[Upload]) -> dict:
        staging = await self.open_resubmission(user, name)
        self._stage_within_limits(staging, files)
        return await self.commit_resubmission(staging, justification)

    async def commit_resubmission(self, staging: Staging, justification: str) -> dict:
        user, ns, name, new_round = staging.user, staging.namespace, staging.name, staging.round
        try:
            staging.close_file()
            if not staging.files:
                raise Problem(400, "no_files", "a resubmission needs at least one file")
        except Problem as p:
            self.refuse(staging, p)
            raise
        spec_files = list(staging.files)
        note = justification.strip()

        def mutate(o):
            if int(o["status"].get("round", 1)) != new_round - 1:
                raise Problem(409, "conflict", f"{name} was resubmitted meanwhile")
            move(o, Phase.SUBMITTED, self.clock(), user, f"resubmitted (round {new_round})"
                  + (f": {note}" if note else ""))
            o["status"]["round"] = new_round
            o["status"]["files"] = spec_files
            if note:
                o["status"]["resubmissionNote"] = note
            o["status"].pop("checks", None)
        try:
            obj = await self._update(ns, name, mutate, lambda o: [
                (user, act.EXPORT_RESUBMIT, f"{ns}/{name}",
                 {"permit": staging.permit.name, "details": {"round": new_round, "files": spec_files}})])
        except BaseException:
            staging.abort()
            raise
        self.quarantine.purge_round(ns, name, new_round - 1)
        self._spawn(self.run_checks(ns, name))
        return obj

    async def _own(self, user: str, name: str, bound: Binding | None = None) -> dict:
        obj = await self.store.find_review(name)
        if obj is None or not same_subject(obj["spec"].get("requester"), user):
            raise Problem(404, "not_found", f"you have no export request {name}")
        self.ensure_bound(user, bound, obj["metadata"]["namespace"], obj["spec"].get("workspace", ""))
        return self._verified(obj)

    async def get_own(self, user: str, name: str, bound: Binding | None = None) -> dict:
        return await self._own(user, name, bound)

    async def list_own(self, user: str, bound: Binding | None = None) -> list[dict]:
        """The user's requests; with ``bound``, only those of that workspace."""
        return sorted((o for o in await self._list() if same_subject(o["spec"].get("requester"), user)
                       and (bound is None or (o["metadata"]["namespace"], o["spec"].get("workspace")) == tuple(bound))),
                      key=lambda o: o["status"].get("submittedAt", ""), reverse=True)

    # --- automatic checks --------------------------------------------------------------------

    async def run_checks(self, namespace: str, name: str) -> dict:
        async with self.check_slots:
            return await self._run_checks(namespace, name)

    async def _run_checks(self, namespace: str, name: str) -> dict:
        def start(o):
            if o["status"].get("phase") != Phase.CHECKING.value:  # Checking: resumed after a restart
                move(o, Phase.CHECKING, self.clock(), act.SYSTEM_ACTOR, "automatic checks running")
        obj = await self._update(namespace, name, start)
        round_ = int(obj["status"]["round"])
        permit = await self.store.get_permit(obj["status"]["permit"])
        thresholds = permit.policy.thresholds if permit else checks_adapter.Thresholds()
        files = [(f["name"], self.quarantine.get(namespace, name, round_, i, f["sha256"]))
                 for i, f in enumerate(current_files(obj))]
        ledger = self._ledger(obj["status"]["permit"])
        try:
            # The permit's datasets' pseudonyms (their digests): unreadable ones fail the checks
            # (block), never an empty set that lets every pseudonym through.
            ids = await self.store.pseudonyms(permit) if permit else frozenset()
            report = await asyncio.to_thread(checks_adapter.run, files, thresholds, ids, ledger)
        except Exception as e:  # noqa: BLE001 - a crashed check must block, never pass
            log.exception("checks failed on %s/%s", namespace, name)
            report = {"engine": "error", "verdict": "block", "files": [
                {"name": n, "verdict": "block", "findings": [{
                    "check": "engine", "severity": "BLOCK", "location": {},
                    "message": f"the automatic checks failed ({type(e).__name__}); the file cannot be approved"}]}
                for n, _ in files]}
        del files
        record = checks_adapter.sign(report, self.report_key)
        rec_dir = self.quarantine.root / namespace / name
        rec_dir.mkdir(parents=True, exist_ok=True)
        (rec_dir / f"check-record-r{round_}.json").write_text(json.dumps(record, sort_keys=True))

        def mutate(o):
            o["status"]["checks"] = status_checks(report)
            move(o, Phase.AWAITING_REVIEW, self.clock(), act.SYSTEM_ACTOR,
                  f"automatic checks: {report.get('verdict')}")
        return await self._update(namespace, name, mutate, lambda o: [
            (act.SYSTEM_ACTOR, act.EXPORT_CHECK, f"{namespace}/{name}",
             {"permit": o["status"]["permit"],
              "details": {"round": round_, "verdict": report.get("verdict"), "engine": report.get("engine")}})])

    async def resume(self) -> list[str]:
        """On start: run the checks that a stopped gateway left unfinished (Submitted, Checking)."""
        names = []
        for o in await self._list():
            if o["status"].get("phase") in RESUME_PHASES:
                names.append(o["metadata"]["name"])
                log.info("resuming the checks of %s/%s", o["metadata"]["namespace"], o["metadata"]["name"])
                self._spawn(self.run_checks(o["metadata"]["namespace"], o["metadata"]["name"]))
        return names

    def check_record(self, namespace: str, name: str, round_: int) -> dict | None:
        p = self.quarantine.root / namespace / name / f"check-record-r{round_}.json"
        return json.loads(p.read_text()) if p.exists() else None

    # --- reviewers ----------------------------------------------------------------------------

    async def _scope(self, reviewer: str, obj: dict, permits: dict | None = None) -> None:
        """Refuse a reviewer who may not review this request (the reason is the error code)."""
        if same_subject(obj["spec"].get("requester"), reviewer):
            raise Problem(403, "own_request", "you cannot review your own export request")
        pname = obj["status"].get("permit") or obj["metadata"].get("labels", {}).get(LABEL_PERMIT, "")
        if permits is not None and pname in permits:
            permit = permits[pname]
        else:
            permit = await self.store.get_permit(pname)
            if permits is not None:
                permits[pname] = permit
        if permit is None:
            raise Problem(403, "not_reviewer_of_permit", f"permit {pname} no longer exists")
        if permit.names(reviewer):
            raise Problem(403, "member_of_permit", f"you are named in permit {pname}; its members never "
                          "review its exports")
        if not permit.names_reviewer(reviewer):
            raise Problem(403, "not_reviewer_of_permit", f"permit {pname} does not name you among its reviewers "
                          "(spec.exportPolicy.reviewers)")

    async def queue(self, reviewer: str) -> list[dict]:
        out, permits = [], {}
        for o in await self._list():
            if o["status"].get("phase") != Phase.AWAITING_REVIEW.value:
                continue
            try:
                await self._scope(reviewer, o, permits)
            except Problem:
                continue
            out.append(o)
        return sorted(out, key=lambda o: o["status"].get("submittedAt", ""))

    async def for_reviewer(self, reviewer: str, name: str) -> dict:
        obj = await self.store.find_review(name)
        if obj is None:
            raise Problem(404, "not_found", f"there is no export request {name}")
        await self._scope(reviewer, obj)
        obj = self._verified(obj)
        st = obj["status"]
        st["decisions"] = decisions.visible_decisions(st.get("decisions", []), int(st.get("round", 1)), reviewer)
        return obj

    async def reviewer_file(self, reviewer: str, name: str, index: int) -> tuple[str, bytes]:
        """A quarantined file for a reviewer to inspect: audited before it is handed out."""
        obj = await self.for_reviewer(reviewer, name)
        files = current_files(obj)
        if not 0 <= index < len(files):
            raise Problem(404, "not_found", "no such file")
        f = files[index]
        ns, round_ = obj["metadata"]["namespace"], int(obj["status"]["round"])
        data = self.quarantine.get(ns, name, round_, index, f["sha256"])
        self.audit_all([(reviewer, act.EXPORT_VIEW, f"{ns}/{name}", {
            "permit": obj["status"].get("permit"),
            "details": {"round": round_, "file": f["name"], "index": index, "sha256": f["sha256"]}})])
        return f["name"], data

    async def vote(self, reviewer: str, name: str, ballot: dict[int, dict]) -> dict:
        obj = await self.for_reviewer(reviewer, name)
        ns = obj["metadata"]["namespace"]
        blocked = {i for i, f in enumerate(obj["status"].get("checks", {}).get("files", []))
                   if f.get("verdict") == "block"}
        try:
            votes = decisions.validate_ballot(ballot, len(current_files(obj)), blocked)
        except decisions.VoteError as e:
            raise Problem(400, "bad_vote", str(e)) from None
        outcome_box: dict = {}

        def mutate(o):
            st = o["status"]
            if st.get("phase") != Phase.AWAITING_REVIEW.value:
                raise Problem(409, "not_awaiting_review", f"{name} is {st.get('phase')}, not awaiting review")
            if same_subject(o["spec"].get("requester"), reviewer):
                raise Problem(403, "own_request", "you cannot review your own export request")
            round_ = int(st.get("round", 1))
            if decisions.has_voted(st.get("decisions", []), round_, reviewer):
                raise Problem(409, "already_voted", "you have already voted on this round")
            now = self.clock()
            st.setdefault("decisions", []).append({"reviewer": reviewer, "round": round_, "at": now_iso(now),
                                                    "votes": votes})
            out = decisions.tally(st["decisions"], round_, len(current_files(o)),
                                  int(st.get("reviewersRequired", 2)))
            outcome_box["outcome"] = out
            if out.phase:
                move(o, Phase(out.phase), now, reviewer, f"decided by {', '.join(out.voters)}")
                st["decidedRounds"] = sorted(set(st.get("decidedRounds", [])) | {round_})
                if out.phase == Phase.APPROVED.value:
                    expires = int(now + self.link_ttl_s)
                    st["release"] = {"round": round_, "approvedFiles": list(out.approved_files),
                                     "expires": expires, "expiresAt": now_iso(expires), "downloads": 0}

        def records(o) -> list[AuditEntry]:
            permit, target, out = o["status"].get("permit"), f"{ns}/{name}", outcome_box["outcome"]
            entries = [(reviewer, act.EXPORT_VOTE, target, {"permit": permit, "details": {
                "round": o["status"]["round"],
                "votes": [{"file": v["file"], "vote": v["vote"], "visibility": v["visibility"]} for v in votes]}})]
            if out.phase:
                action = {"Approved": act.EXPORT_APPROVE, "Rejected": act.EXPORT_REJECT,
                          "Returned": act.EXPORT_RETURN}[out.phase]
                entries.append((reviewer, action, target, {"permit": permit, "details": {
                    "reviewers": list(out.voters), "approvedFiles": list(out.approved_files)}}))
                if out.phase == Phase.APPROVED.value:
                    entries.append((act.SYSTEM_ACTOR, act.EXPORT_RELEASE, target, {"permit": permit, "details": {
                        "requester": o["spec"]["requester"], "expiresAt": o["status"]["release"]["expiresAt"],
                        "files": [current_files(o)[i]["name"] for i in out.approved_files]}}))
            return entries
        obj = await self._update(ns, name, mutate, records)
        if outcome_box["outcome"].phase == Phase.APPROVED.value:
            self._record_released_tables(obj)
        return obj

    # --- release ---------------------------------------------------------------------------

    def download_path(self, obj: dict) -> str | None:
        rel = obj["status"].get("release")
        if not rel or obj["status"].get("phase") not in (Phase.APPROVED.value, Phase.RELEASED.value):
            return None
        if not self._sealed(obj):  # a forged or edited record never signs a link
            return None
        return release_path(self.link_key, obj["metadata"]["namespace"], obj["metadata"]["name"],
                            rel["round"], rel["expires"])

    async def download(self, namespace: str, name: str, round_: int, client: str) -> tuple[str, bytes]:
        """The bundle for whoever holds a valid link. The link is a bearer capability: the act
        is recorded as the link's bearer (``link:<client address>``), with the requester the
        link was issued to in the details -- not as the requester, who may not be the one
        downloading."""
        obj = await self._get(namespace, name)
        st = (obj or {}).get("status", {})
        rel = st.get("release")
        if obj is None or not rel or int(rel["round"]) != round_ or \
                st.get("phase") not in (Phase.APPROVED.value, Phase.RELEASED.value):
            raise Problem(404, "not_released", "there is nothing released under this link")
        cur = current_files(obj)
        files = [(cur[i]["name"], self.quarantine.get(namespace, name, round_, i, cur[i]["sha256"]))
                 for i in rel["approvedFiles"]]
        record = self.check_record(namespace, name, round_) or {}
        bundle = build_bundle(files, {"request": f"{namespace}/{name}", "round": round_,
                                      "approvedFiles": [cur[i] for i in rel["approvedFiles"]],
                                      "reviewers": sorted({d["reviewer"] for d in st.get("decisions", [])
                                                           if d.get("round") == round_}),
                                      "checkRecord": record})
        requester = obj["spec"]["requester"]

        def mutate(o):
            if o["status"]["phase"] == Phase.APPROVED.value:
                move(o, Phase.RELEASED, self.clock(), requester, "bundle downloaded")
            o["status"]["release"]["downloads"] = int(o["status"]["release"].get("downloads", 0)) + 1
        await self._update(namespace, name, mutate, lambda o: [
            (f"link:{client or 'unknown'}", act.EXPORT_DOWNLOAD, f"{namespace}/{name}", {
                "permit": st.get("permit"),
                "details": {"requester": requester, "client": client, "round": round_, "bytes": len(bundle),
                            "sha256": hashlib.sha256(bundle).hexdigest(),
                            "download": int(o["status"]["release"].get("downloads", 0))}})])
        return f"{name}-bundle.zip", bundle

    def _ledger_path(self, permit: str) -> Path:
        return self.ledger_dir / f"{permit}.jsonl"

    def _ledger(self, permit: str) -> list[dict]:
        p = self._ledger_path(permit)
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def _record_released_tables(self, obj: dict) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        rel = obj["status"]["release"]
        entries = []
        for i in rel["approvedFiles"]:
            f = current_files(obj)[i]
            fp = checks_adapter.fingerprint(f["name"], self.quarantine.get(ns, name, rel["round"], i, f["sha256"]))
            if fp is not None:
                entries.append(fp)
        if entries:
            self.ledger_dir.mkdir(parents=True, exist_ok=True)
            with open(self._ledger_path(obj["status"]["permit"]), "a") as fh:
                for e in entries:
                    fh.write(json.dumps(e, sort_keys=True, default=str) + "\n")

    # --- retention and revocation ---------------------------------------------------------------

    async def sweep(self) -> list[str]:
        """Expire open requests past retention, cancel those of revoked permits, purge ended ones."""
        now = self.clock()
        changed = []
        permits: dict[str, PermitInfo | None] = {}
        for obj in await self._list():
            ns, name, st = obj["metadata"]["namespace"], obj["metadata"]["name"], obj.get("status", {})
            phase = st.get("phase")
            pname = st.get("permit") or obj["metadata"].get("labels", {}).get(LABEL_PERMIT, "")
            if pname not in permits:
                permits[pname] = await self.store.get_permit(pname)
            permit = permits[pname]
            retention_s = (permit.policy.retention_days if permit else 30) * 86400
            started = parse_iso(st.get("submittedAt")) or now
            target = None
            if lifecycle.is_open(phase) and (permit is None or permit.phase == "Revoked"):
                target, why = Phase.CANCELLED, "the permit was revoked"
            elif lifecycle.is_open(phase) and now - started > retention_s:
                target, why = Phase.EXPIRED, "the retention period ended"
            if target is not None:
                try:
                    await self._update(ns, name, lambda o: move(o, target, now, act.SYSTEM_ACTOR, why), lambda o: [
                        (act.SYSTEM_ACTOR, act.EXPORT_EXPIRE if target is Phase.EXPIRED else act.EXPORT_CANCEL,
                         f"{ns}/{name}", {"permit": pname, "details": {"phase": target.value, "reason": why}})])
                except (Problem, lifecycle.IllegalTransition):
                    continue
                phase = target.value
                changed.append(name)
            ended = phase in (Phase.EXPIRED.value, Phase.CANCELLED.value, Phase.WITHDRAWN.value,
                              Phase.REJECTED.value)
            released_over = phase == Phase.RELEASED.value and now > int(st.get("release", {}).get("expires", now + 1))
            if (ended or released_over) and self.quarantine.exists(ns, name):
                await self._purge(ns, name, pname, {"phase": phase})
        return changed

    async def _purge(self, ns: str, name: str, permit: str | None, details: dict) -> bool:
        try:
            self.audit_all([(act.SYSTEM_ACTOR, act.EXPORT_PURGE, f"{ns}/{name}", {"permit": permit,
                                                                                   "details": details})])
        except Problem:
            return False  # not recorded, not done: the next sweep retries
        self.quarantine.purge(ns, name)
        return True

    async def reap(self) -> list[str]:
        """Requests deleted in the cluster (by hand, or with their permit's namespace): purge
        their quarantined files and record, then release the OutputReview's finalizer."""
        done = []
        for ns, name in await self.store.ended_reviews():
            if self.quarantine.exists(ns, name):
                if not await self._purge(ns, name, None, {"reason": "the request was deleted"}):
                    continue
            try:
                await self.store.forget(ns, name)
            except Exception:  # noqa: BLE001 - the next round retries
                log.exception("releasing %s/%s failed", ns, name)
                continue
            done.append(name)
        return done

    # --- plumbing --------------------------------------------------------------------------------

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _update(self, namespace: str, name: str, mutate,
                      records: Callable[[dict], list[AuditEntry]] | None = None) -> dict:
        """Re-read, verify, mutate; write the act's audit records (the act is refused if they
        cannot be written); seal and store."""
        lock = self._locks.setdefault(f"{namespace}/{name}", asyncio.Lock())
        async with lock:
            for _ in range(10):
                obj = await self._get(namespace, name)
                if obj is None:
                    raise Problem(404, "not_found", f"there is no export request {name}")
                obj.setdefault("status", {})
                mutate(obj)
                entries = records(obj) if records else []
                self.audit_all(entries)
                try:
                    return await self.store.replace_status(self._seal(obj))
                except Conflict:
                    self._audit_failed(entries, "the record changed meanwhile; retried")
                    await asyncio.sleep(0.05)
                except BaseException as e:
                    self._audit_failed(entries, f"the record could not be written: {type(e).__name__}")
                    raise
            raise Problem(503, "conflict", f"{name} is changing too often; try again")
