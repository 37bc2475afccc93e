"""Retention and revocation: open requests expire or are cancelled, ended ones are purged, and
requests deleted in the cluster are let go."""

from __future__ import annotations

from . import audit as act
from . import lifecycle
from .lifecycle import Phase
from .records import Problem, move, parse_iso
from .sealed_records import SealedRecords, log
from .store import LABEL_PERMIT, PermitInfo


class Retention(SealedRecords):
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
