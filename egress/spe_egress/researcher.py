"""The researcher's side of the gateway: who may export from a workspace, and filing,
withdrawing and resubmitting a request (its files quarantined as they stream in)."""

from __future__ import annotations

import secrets

from spe_api.subjects import same_subject, subject_in

from . import audit as act
from .lifecycle import Phase
from .records import Problem, Upload, event, label_value, move
from .sealed_records import Binding, SealedRecords, log
from .staging import Staging, check_file_name
from .store import (API_VERSION, LABEL_MANAGED_BY, LABEL_PERMIT, LABEL_REQUESTER, LABEL_WORKSPACE, PermitInfo,
                    WorkspaceInfo, now_iso)

MIN_JUSTIFICATION = 10        # OutputReview's spec.justification minimum


class ResearcherActions(SealedRecords):
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
