"""The base of the gateway's service: its reviews as sealed records, every change written through
:meth:`SealedRecords._update` with the act's audit records first (see :mod:`.service`).

- **Sealed records.** Every state the gateway writes carries ``status.seal``, an HMAC-SHA256
  (key derived from the gateway's secret) over the request's namespace, name, spec and state.
  A record that does not verify -- edited, forged, or copied from another request -- is
  refused (``record_tampered``) and audited (``export.tampered``); it never signs a link.
- **Audit fails closed.** The records of an act are written before the act takes effect
  (before the state is written, before a file or bundle is handed out); when the trail cannot
  be written the act is refused (``audit_unavailable``, 503) and nothing changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterable

from . import audit as act
from .audit import Auditor
from .quarantine import Quarantine
from .records import Problem
from .release import DEFAULT_LINK_TTL_S
from .store import Conflict, Store

log = logging.getLogger("spe_egress")

SEAL_ALG = "HMAC-SHA256"
CHECK_SLOTS = 1               # checks at once: each holds a request's files in memory

AuditEntry = tuple  # (actor, action, target, keyword arguments of Auditor.record)
# (namespace, workspace) a researcher's server token is bound to (see .hub_auth); None for
# callers inside the gateway and the service tests, which name the workspace themselves
Binding = tuple[str, str]


class SealedRecords:
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
