"""Audit records for every step of an export (request, check, vote, decision, release,
download), written through the shared hash-chained trail ``spe_audit``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from spe_audit import AuditLog


# Act names: the shared vocabulary's shape (noun.verb), which the trail accepts.
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
        self._log = AuditLog(str(self.path))

    def record(self, actor: str, action: str, target: str, *, permit: str | None = None,
               dataset: str | None = None, outcome: str = "success", details: dict | None = None) -> None:
        self._log.record(actor_name(actor), action, target, permit=permit, dataset=dataset,
                         outcome=outcome, details=details)

    def close(self) -> None:
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
