"""Audit records for every step of an export (request, check, vote, decision, release,
download), written through the shared hash-chained trail ``spe_audit`` when it is
installed, else to a plain JSON-lines file with the same fields."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

try:
    import spe_audit as _audit  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    _audit = None


def _log_class():
    """``spe_audit.AuditLog`` once the shared trail is installed, else None (JSON lines)."""
    if _audit is None:
        return None
    cls = getattr(_audit, "AuditLog", None)
    if cls is None:
        try:
            from spe_audit.log import AuditLog as cls  # type: ignore[no-redef]
        except ImportError:
            return None
    return cls


# Act names: the shared vocabulary (spe_audit.Act) where it has the act, else a name of the
# same shape (noun.verb) that the trail accepts.
EXPORT_REQUEST = "export.requested"
EXPORT_CHECK = "export.checked"
EXPORT_VOTE = "export.voted"
EXPORT_APPROVE = "export.approved"
EXPORT_REJECT = "export.rejected"
EXPORT_RELEASE = "export.released"
EXPORT_DOWNLOAD = "export.downloaded"
EXPORT_RETURN = "export.returned"
EXPORT_WITHDRAW = "export.withdrawn"
EXPORT_RESUBMIT = "export.resubmitted"
EXPORT_EXPIRE = "export.expired"
EXPORT_CANCEL = "export.cancelled"
EXPORT_PURGE = "export.purged"
EXPORT_DENIED = "export.denied"
REVIEWER_LOGIN = "export.reviewer_login"
EXPORT_VIEW = "export.viewed"          # a reviewer opened a quarantined file
EXPORT_TAMPERED = "export.tampered"    # a record whose seal does not verify was refused
SYSTEM_ACTOR = "system:spe-egress"


def actor_name(who: str) -> str:
    """People are ``user:<name>``; the gateway itself is ``system:spe-egress``."""
    return who if ":" in who else f"user:{who}"


class Auditor:
    """``record(actor, action, target, permit=, dataset=, outcome=, details=)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cls = _log_class()
        self._log = cls(str(self.path)) if cls is not None else None
        self._lock = threading.Lock()

    def record(self, actor: str, action: str, target: str, *, permit: str | None = None,
               dataset: str | None = None, outcome: str = "success", details: dict | None = None) -> None:
        actor = actor_name(actor)
        if self._log is not None:
            self._log.record(actor, action, target, permit=permit, dataset=dataset,
                             outcome=outcome, details=details)
            return
        rec = {"time": time.time(), "actor": actor, "action": action, "target": target,
               "permit": permit, "dataset": dataset, "outcome": outcome, "details": details or {}}
        line = json.dumps(rec, sort_keys=True, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def close(self) -> None:
        if self._log is not None and hasattr(self._log, "close"):
            self._log.close()

    def entries(self) -> list[dict[str, Any]]:
        """Read back the records (for tests and the reviewer page's history)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out
