"""The reviewers' side of the gateway: whose requests a reviewer sees, the quarantined files they
inspect, and their votes (tallied into a decision).

A reviewer sees and decides only the requests of permits whose ``exportPolicy.reviewers`` name
them, and never those of a permit that names them as a member. People are compared on one
subject (:mod:`spe_api.subjects`)."""

from __future__ import annotations

from spe_api.subjects import same_subject

from . import audit as act
from . import decisions
from .lifecycle import Phase
from .records import Problem, current_files, move
from .sealed_records import AuditEntry, SealedRecords
from .store import LABEL_PERMIT, now_iso


class Reviewing(SealedRecords):
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
