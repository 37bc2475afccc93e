"""The gateway's domain logic: requests, checks, votes, release, expiry. No HTTP here.

Every change to a review goes through :meth:`EgressService._update`, which re-reads the
object, applies a pure mutation, checks the lifecycle, and writes with optimistic
concurrency (retrying on conflict), under a per-review lock for this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Callable

from . import audit as act
from . import checks_adapter, decisions, lifecycle
from .audit import Auditor
from .lifecycle import Phase
from .quarantine import Quarantine
from .records import Problem, Upload, event, label_value, move, parse_iso, status_checks, current_files
from .release import DEFAULT_LINK_TTL_S, build_bundle, release_path
from .store import (API_VERSION, LABEL_MANAGED_BY, LABEL_PERMIT, LABEL_REQUESTER, LABEL_WORKSPACE,
                    Conflict, PermitInfo, Store, WorkspaceInfo, now_iso)

log = logging.getLogger("spe_egress")

MAX_FILE_NAME = 1024          # OutputReview's spec.files[].name limit
MIN_JUSTIFICATION = 10        # OutputReview's spec.justification minimum


class EgressService:
    def __init__(self, store: Store, quarantine: Quarantine, auditor: Auditor, *, report_key: bytes,
                 link_key: bytes, ledger_dir: str | Path, link_ttl_s: int = DEFAULT_LINK_TTL_S,
                 clock: Callable[[], float] = time.time):
        self.store, self.quarantine, self.audit = store, quarantine, auditor
        self.report_key, self.link_key = report_key, link_key
        self.ledger_dir = Path(ledger_dir)
        self.link_ttl_s = link_ttl_s
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()

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
        if user not in permit.members or (ws.members and user not in ws.members):
            where = f"permit {permit.name}" if user not in permit.members else f"workspace {ws.name}"
            raise Problem(403, "not_member", f"{user} is not a member of {where}; "
                          "ask the data access committee to add you")
        if not permit.active:
            raise Problem(403, "permit_inactive", f"permit {permit.name} is {permit.phase}, not Active: "
                          "exports are refused")
        return ws, permit

    def check_limits(self, permit: PermitInfo, files: list[Upload]) -> None:
        pol = permit.policy
        if not files:
            raise Problem(400, "no_files", "an export request needs at least one file")
        if len(files) > pol.max_files:
            raise Problem(413, "too_many_files", f"{len(files)} files; permit {permit.name} allows {pol.max_files} per request")
        seen: set[str] = set()
        for f in files:
            parts = f.name.split("/")
            if (not f.name or len(f.name) > MAX_FILE_NAME or "\x00" in f.name or f.name.startswith("/")
                    or any(p in ("", ".", "..") for p in parts)):
                raise Problem(400, "bad_file_name", f"file name {f.name[:60]!r} must be a relative path "
                              "without '.' or '..' segments, e.g. results/table1.csv")
            if f.name in seen:
                raise Problem(400, "duplicate_file", f"{f.name} is sent twice")
            seen.add(f.name)
            if len(f.data) > pol.thresholds.max_file_bytes:
                raise Problem(413, "file_too_large", f"{f.name} is {len(f.data)} bytes; permit {permit.name} "
                              f"allows at most {pol.thresholds.max_file_bytes} bytes per file")

    # --- researcher actions ----------------------------------------------------------------

    async def create_request(self, user: str, namespace: str, workspace: str, justification: str,
                             files: list[Upload]) -> dict:
        ws, permit = await self.authorize_export(user, namespace, workspace)
        try:
            self.check_limits(permit, files)
            if len(justification.strip()) < MIN_JUSTIFICATION:
                raise Problem(400, "no_justification", "say why these files need to leave and why they are "
                              f"not disclosive (--justification, at least {MIN_JUSTIFICATION} characters)")
        except Problem as p:
            self.audit.record(user, act.EXPORT_DENIED, f"{namespace}/{workspace}", permit=permit.name,
                              outcome="denied", details={"code": p.code, "message": p.message})
            raise
        name = "er-" + secrets.token_hex(5)
        spec_files = [{"name": f.name, "size": len(f.data),
                       "sha256": self.quarantine.put(namespace, name, 1, i, f.data)}
                      for i, f in enumerate(files)]
        obj = {"apiVersion": API_VERSION, "kind": "OutputReview",
               "metadata": {"name": name, "namespace": namespace,
                            "labels": {LABEL_PERMIT: permit.name, LABEL_WORKSPACE: ws.name,
                                       LABEL_REQUESTER: label_value(user), LABEL_MANAGED_BY: "spe-egress"}},
               "spec": {"requester": user, "workspace": ws.name, "files": spec_files,
                        "justification": justification.strip()}}
        try:
            created = await self.store.create_review(obj)
        except Exception:
            self.quarantine.purge(namespace, name)
            raise
        now = self.clock()
        status = {"phase": Phase.SUBMITTED.value, "round": 1, "files": spec_files, "permit": permit.name,
                  "reviewersRequired": permit.policy.reviewers_required,
                  "submittedAt": now_iso(now),
                  "history": [event(now, Phase.SUBMITTED, user, "request submitted")], "decisions": []}
        created["status"] = status
        created = await self._write_status(created)
        self.audit.record(user, act.EXPORT_REQUEST, f"{namespace}/{name}", permit=permit.name,
                          details={"files": spec_files, "workspace": ws.name})
        self._spawn(self.run_checks(namespace, name))
        return created

    async def withdraw(self, user: str, name: str) -> dict:
        obj = await self._own(user, name)
        ns = obj["metadata"]["namespace"]

        def mutate(o):
            move(o, Phase.WITHDRAWN, self.clock(), user, "withdrawn by the requester")
        obj = await self._update(ns, name, mutate)
        self.quarantine.purge(ns, name)
        self.audit.record(user, act.EXPORT_WITHDRAW, f"{ns}/{name}", permit=obj["status"].get("permit"))
        return obj

    async def resubmit(self, user: str, name: str, justification: str, files: list[Upload]) -> dict:
        obj = await self._own(user, name)
        ns = obj["metadata"]["namespace"]
        if obj["status"].get("phase") != Phase.RETURNED.value:
            raise Problem(409, "not_returned", f"only a returned request can be resubmitted; {name} is "
                          f"{obj['status'].get('phase')}")
        _, permit = await self.authorize_export(user, ns, obj["spec"]["workspace"])
        self.check_limits(permit, files)
        new_round = int(obj["status"].get("round", 1)) + 1
        spec_files = [{"name": f.name, "size": len(f.data),
                       "sha256": self.quarantine.put(ns, name, new_round, i, f.data)}
                      for i, f in enumerate(files)]
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
        obj = await self._update(ns, name, mutate)
        self.quarantine.purge_round(ns, name, new_round - 1)
        self.audit.record(user, act.EXPORT_RESUBMIT, f"{ns}/{name}", permit=permit.name,
                          details={"round": new_round, "files": spec_files})
        self._spawn(self.run_checks(ns, name))
        return obj

    async def _own(self, user: str, name: str) -> dict:
        obj = await self.store.find_review(name)
        if obj is None or obj["spec"].get("requester") != user:
            raise Problem(404, "not_found", f"you have no export request {name}")
        return obj

    async def get_own(self, user: str, name: str) -> dict:
        return await self._own(user, name)

    async def list_own(self, user: str) -> list[dict]:
        return sorted(await self.store.list_reviews(requester=user),
                      key=lambda o: o["status"].get("submittedAt", ""), reverse=True)

    # --- automatic checks --------------------------------------------------------------------

    async def run_checks(self, namespace: str, name: str) -> dict:
        obj = await self._update(namespace, name, lambda o: move(o, Phase.CHECKING, self.clock(), act.SYSTEM_ACTOR,
                                                                   "automatic checks running"))
        round_ = int(obj["status"]["round"])
        permit = await self.store.get_permit(obj["status"]["permit"])
        thresholds = permit.policy.thresholds if permit else checks_adapter.Thresholds()
        ids = set(permit.pseudonymous_ids) if permit else set()
        files = [(f["name"], self.quarantine.get(namespace, name, round_, i, f["sha256"]))
                 for i, f in enumerate(current_files(obj))]
        ledger = self._ledger(obj["status"]["permit"])
        try:
            report = await asyncio.to_thread(checks_adapter.run, files, thresholds, ids, ledger)
        except Exception as e:  # noqa: BLE001 - a crashed check must block, never pass
            log.exception("checks failed on %s/%s", namespace, name)
            report = {"engine": "error", "verdict": "block", "files": [
                {"name": n, "verdict": "block", "findings": [{
                    "check": "engine", "severity": "BLOCK", "location": {},
                    "message": f"the automatic checks failed ({type(e).__name__}); the file cannot be approved"}]}
                for n, _ in files]}
        record = checks_adapter.sign(report, self.report_key)
        rec_dir = self.quarantine.root / namespace / name
        rec_dir.mkdir(parents=True, exist_ok=True)
        (rec_dir / f"check-record-r{round_}.json").write_text(json.dumps(record, sort_keys=True))

        def mutate(o):
            o["status"]["checks"] = status_checks(report)
            move(o, Phase.AWAITING_REVIEW, self.clock(), act.SYSTEM_ACTOR,
                  f"automatic checks: {report.get('verdict')}")
        obj = await self._update(namespace, name, mutate)
        self.audit.record(act.SYSTEM_ACTOR, act.EXPORT_CHECK, f"{namespace}/{name}", permit=obj["status"]["permit"],
                          details={"round": round_, "verdict": report.get("verdict"), "engine": report.get("engine")})
        return obj

    def check_record(self, namespace: str, name: str, round_: int) -> dict | None:
        p = self.quarantine.root / namespace / name / f"check-record-r{round_}.json"
        return json.loads(p.read_text()) if p.exists() else None

    # --- reviewers ----------------------------------------------------------------------------

    async def queue(self, reviewer: str) -> list[dict]:
        out = [o for o in await self.store.list_reviews()
               if o["status"].get("phase") == Phase.AWAITING_REVIEW.value and o["spec"].get("requester") != reviewer]
        return sorted(out, key=lambda o: o["status"].get("submittedAt", ""))

    async def for_reviewer(self, reviewer: str, name: str) -> dict:
        obj = await self.store.find_review(name)
        if obj is None:
            raise Problem(404, "not_found", f"there is no export request {name}")
        if obj["spec"].get("requester") == reviewer:
            raise Problem(403, "own_request", "you cannot review your own export request")
        st = obj["status"]
        st["decisions"] = decisions.visible_decisions(st.get("decisions", []), int(st.get("round", 1)), reviewer)
        return obj

    async def reviewer_file(self, reviewer: str, name: str, index: int) -> tuple[str, bytes]:
        obj = await self.for_reviewer(reviewer, name)
        files = current_files(obj)
        if not 0 <= index < len(files):
            raise Problem(404, "not_found", "no such file")
        f = files[index]
        data = self.quarantine.get(obj["metadata"]["namespace"], name, int(obj["status"]["round"]), index, f["sha256"])
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
            if o["spec"].get("requester") == reviewer:
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
        obj = await self._update(ns, name, mutate)
        permit = obj["status"].get("permit")
        self.audit.record(reviewer, act.EXPORT_VOTE, f"{ns}/{name}", permit=permit,
                          details={"round": obj["status"]["round"], "votes": [
                              {"file": v["file"], "vote": v["vote"], "visibility": v["visibility"]} for v in votes]})
        out = outcome_box["outcome"]
        if out.phase:
            action = {"Approved": act.EXPORT_APPROVE, "Rejected": act.EXPORT_REJECT,
                      "Returned": act.EXPORT_RETURN}[out.phase]
            self.audit.record(reviewer, action, f"{ns}/{name}", permit=permit,
                              details={"reviewers": list(out.voters), "approvedFiles": list(out.approved_files)})
            if out.phase == Phase.APPROVED.value:
                self._record_released_tables(obj)
                self.audit.record(act.SYSTEM_ACTOR, act.EXPORT_RELEASE, f"{ns}/{name}", permit=permit,
                                  details={"requester": obj["spec"]["requester"],
                                           "expiresAt": obj["status"]["release"]["expiresAt"],
                                           "files": [current_files(obj)[i]["name"] for i in out.approved_files]})
        return obj

    # --- release ---------------------------------------------------------------------------

    def download_path(self, obj: dict) -> str | None:
        rel = obj["status"].get("release")
        if not rel or obj["status"].get("phase") not in (Phase.APPROVED.value, Phase.RELEASED.value):
            return None
        return release_path(self.link_key, obj["metadata"]["namespace"], obj["metadata"]["name"],
                            rel["round"], rel["expires"])

    async def download(self, namespace: str, name: str, round_: int, client: str) -> tuple[str, bytes]:
        obj = await self.store.get_review(namespace, name)
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
        obj = await self._update(namespace, name, mutate)
        self.audit.record(requester, act.EXPORT_DOWNLOAD, f"{namespace}/{name}", permit=st.get("permit"),
                          details={"client": client, "round": round_, "bytes": len(bundle),
                                   "download": obj["status"]["release"]["downloads"]})
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
        for obj in await self.store.list_reviews():
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
                    await self._update(ns, name, lambda o: move(o, target, now, act.SYSTEM_ACTOR, why))
                except (Problem, lifecycle.IllegalTransition):
                    continue
                self.audit.record(act.SYSTEM_ACTOR, act.EXPORT_EXPIRE if target is Phase.EXPIRED
                                  else act.EXPORT_CANCEL, f"{ns}/{name}", permit=pname,
                                  details={"phase": target.value, "reason": why})
                phase = target.value
                changed.append(name)
            ended = phase in (Phase.EXPIRED.value, Phase.CANCELLED.value, Phase.WITHDRAWN.value,
                              Phase.REJECTED.value)
            released_over = phase == Phase.RELEASED.value and now > int(st.get("release", {}).get("expires", now + 1))
            if (ended or released_over) and self.quarantine.exists(ns, name):
                self.quarantine.purge(ns, name)
                self.audit.record(act.SYSTEM_ACTOR, act.EXPORT_PURGE, f"{ns}/{name}", permit=pname,
                                  details={"phase": phase})
        return changed

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

    async def _write_status(self, obj: dict) -> dict:
        return await self.store.replace_status(obj)

    async def _update(self, namespace: str, name: str, mutate) -> dict:
        lock = self._locks.setdefault(f"{namespace}/{name}", asyncio.Lock())
        async with lock:
            for _ in range(10):
                obj = await self.store.get_review(namespace, name)
                if obj is None:
                    raise Problem(404, "not_found", f"there is no export request {name}")
                obj.setdefault("status", {})
                mutate(obj)
                try:
                    return await self.store.replace_status(obj)
                except Conflict:
                    await asyncio.sleep(0.05)
            raise Problem(503, "conflict", f"{name} is changing too often; try again")
