"""The operator's audit hook: records its acts (permits, workspaces, datasets mounted, tools) in
the hash-chained trail when ``settings.audit_log_path`` is set; otherwise a no-op. One instance
lives in the operator's memo (``memo.audit``), shared by every reconciler.

Audit fails closed for the acts that give access (a permit issued or changed, a workspace
started, a dataset mounted, a tool approved): when the trail cannot take the record,
``record`` raises ``AuditUnavailable`` and the caller does not perform the act (the reconcile
fails and is retried). Acts that take access away (suspension, revocation, expiry, a stop) are
never held up by the trail: their records wait in a backlog, written before the next record,
in order, as soon as the trail takes records again.

The trail signs its checkpoints with ``audit_signing_key`` and publishes each one to the
ConfigMap ``audit_checkpoint_configmap`` in the operator's namespace (a cut of the log's tail
then shows); with ``otlp_endpoint`` set, every record also leaves through OpenTelemetry.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

ACTOR = "system:spe-operator"
SERVICE_NAME = "spe-operator"
# The acts that give access: an act of these that cannot be recorded does not happen.
FAIL_CLOSED = frozenset({"permit.issued", "permit.changed", "workspace.started", "dataset.mounted",
                         "tool.approved"})
MAX_BACKLOG = 10_000


class AuditUnavailable(RuntimeError):
    """The audit trail refused a record of an act that gives access: do not perform the act."""


class AuditHook:
    def __init__(self, log_: Any = None, telemetry: Any = None, publisher: Any = None):
        self._log = log_
        self._telemetry = telemetry
        self._publisher = publisher
        self._backlog: deque[tuple[str, dict[str, Any]]] = deque(maxlen=MAX_BACKLOG)
        self._writing = threading.Lock()  # one drain at a time, so the backlog is written in order

    @classmethod
    def from_settings(cls, path: str | None, signing_key: str | None = None, *, otlp_endpoint: str | None = None,
                      publisher: Any = None, checkpoint_every: int = 1000) -> "AuditHook":
        """A hook writing to ``path`` (checkpoints signed with ``signing_key``, published by
        ``publisher``; records exported to ``otlp_endpoint``), or a no-op without a path."""
        if not path or importlib.util.find_spec("spe_audit") is None:
            return cls(None)
        from spe_audit import AuditLog, telemetry  # noqa: PLC0415 - optional dependency
        from spe_audit.settings import TelemetrySettings  # noqa: PLC0415

        tel = telemetry.Telemetry.from_settings(TelemetrySettings(otlp_endpoint=otlp_endpoint,
                                                                  service_name=SERVICE_NAME))
        if tel.enabled:
            telemetry.set_current(tel)
        return cls(AuditLog(path, signing_key=signing_key, exporter=tel.audit_exporter(), publisher=publisher,
                            actor=ACTOR, checkpoint_every=checkpoint_every), tel, publisher)

    @property
    def enabled(self) -> bool:
        return self._log is not None

    @property
    def backlog(self) -> int:
        """Records of access-removing acts still waiting for the trail."""
        return len(self._backlog)

    async def record(self, action: str, *, target: str, permit: str | None = None, dataset: str | None = None,
                     outcome: str = "success", details: Mapping[str, Any] | None = None) -> None:
        if self._log is None:
            return
        fields = {"target": target, "permit": permit, "dataset": dataset, "outcome": outcome,
                  "details": dict(details or {})}
        entry = (action, fields)
        self._backlog.append(entry)
        try:
            # record() may fsync: keep it off the event loop.
            await asyncio.to_thread(self._drain)
        except Exception as exc:  # noqa: BLE001 - reported below, by the kind of act
            if action in FAIL_CLOSED:
                try:
                    self._backlog.remove(entry)  # the act does not happen, so neither does its record
                except ValueError:
                    return  # another drain wrote it before the trail failed
                log.error("audit record %s for %s failed: %s; the act is refused", action, target, exc)
                raise AuditUnavailable(f"the audit trail cannot record {action} for {target}: {exc}") from exc
            log.error("audit record %s for %s failed: %s; kept (%d waiting) until the trail takes records",
                      action, target, exc, len(self._backlog))

    async def checkpoint(self) -> Any:
        """A checkpoint of the trail's tail now (signed, published): the operator takes one at
        start, so a new trail shows at once that it is written and published."""
        if self._log is None:
            return None

        def _take():
            with self._writing:
                return self._log.checkpoint()

        cp = await asyncio.to_thread(_take)
        flush = getattr(self._publisher, "flush", None)
        if flush is not None:
            await flush()
        return cp

    def _drain(self) -> None:
        with self._writing:
            while self._backlog:
                action, fields = self._backlog[0]
                self._log.record(ACTOR, action, **fields)
                self._backlog.popleft()

    def close(self) -> None:
        if self._log is not None:
            try:
                if self._backlog:
                    self._drain()
            except Exception:  # noqa: BLE001 - logged; the trail's own close still runs
                log.exception("audit backlog of %d record(s) lost at shutdown", len(self._backlog))
            try:
                self._log.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the audit trail failed")
            self._log = None
        if self._telemetry is not None:
            self._telemetry.shutdown()
            self._telemetry = None

    async def aclose(self) -> None:
        """``close`` (final signed checkpoint), then wait until it is published."""
        self.close()
        flush = getattr(self._publisher, "flush", None)
        if flush is not None:
            try:
                await flush()
            except Exception:  # noqa: BLE001 - the log file stays the truth
                log.exception("publishing the final audit checkpoint failed")
