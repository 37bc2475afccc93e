"""The operator's audit hook: records its acts (permits, workspaces, datasets mounted, tools) in
the hash-chained trail when ``settings.audit_log_path`` is set; otherwise a no-op. One instance
lives in the operator's memo (``memo.audit``), shared by every reconciler."""

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
    def from_settings(cls, path: str | None, signing_key: str | None = None) -> "AuditHook":
        """A hook writing to ``path`` (signed checkpoints with ``signing_key``), or a no-op."""
        if not path or importlib.util.find_spec("spe_audit") is None:
            return cls(None)
        from spe_audit import AuditLog  # noqa: PLC0415 - optional dependency

        return cls(AuditLog(path, signing_key=signing_key))

    @property
    def enabled(self) -> bool:
        return self._log is not None

    async def record(self, action: str, *, target: str, permit: str | None = None, dataset: str | None = None,
                     outcome: str = "success", details: Mapping[str, Any] | None = None) -> None:
        if self._log is None:
            return
        try:
            # record() may fsync: keep it off the event loop.
            await asyncio.to_thread(self._log.record, ACTOR, action, target, permit=permit, dataset=dataset, outcome=outcome,
                                    details=dict(details or {}))
        except Exception:  # noqa: BLE001 - auditing must not stop reconciliation; it is logged loudly
            log.exception("audit record %s for %s failed", action, target)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
