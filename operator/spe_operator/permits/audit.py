"""The optional audit hook: records permit acts in the hash-chained trail when ``spe_audit``
is installed and ``settings.audit_log_path`` is set; otherwise a no-op. One instance lives in
the operator's memo (``memo.audit``) and may be shared with the other reconcilers."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

ACTOR = "system:spe-operator"


class AuditHook:
    def __init__(self, log_: Any = None):
        self._log = log_

    @classmethod
    def from_settings(cls, path: str | None) -> "AuditHook":
        if not path or importlib.util.find_spec("spe_audit") is None:
            return cls(None)
        from spe_audit import AuditLog  # noqa: PLC0415 - optional dependency

        return cls(AuditLog(path))

    @property
    def enabled(self) -> bool:
        return self._log is not None

    async def record(self, action: str, *, target: str, permit: str | None = None, outcome: str = "success",
                     details: Mapping[str, Any] | None = None) -> None:
        if self._log is None:
            return
        try:
            # record() may fsync: keep it off the event loop.
            await asyncio.to_thread(self._log.record, ACTOR, action, target, permit=permit, outcome=outcome,
                                    details=dict(details or {}))
        except Exception:  # noqa: BLE001 - auditing must not stop reconciliation; it is logged loudly
            log.exception("audit record %s for %s failed", action, target)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
