"""Helpers shared by the audit-trail tests (a module name of its own: spawned children import it)."""

from __future__ import annotations

import json
from pathlib import Path

from spe_audit import Act, AuditLog

REPO = Path(__file__).resolve().parents[2]
SPE_AUDIT = REPO / ".venv" / "bin" / "spe-audit"


def fill(log: AuditLog, n: int, start: int = 0) -> None:
    """Append n varied records."""
    acts = [Act.PERMIT_ISSUED, Act.WORKSPACE_STARTED, Act.DATASET_MOUNTED, Act.EXPORT_REQUESTED]
    for i in range(start, start + n):
        log.record(f"user:u{i % 3}", acts[i % len(acts)], target=f"Workspace/spe-p{i % 2}/ws{i}",
                   permit=f"p{i % 2}", dataset="lung-ct" if i % 2 else None,
                   outcome="success" if i % 5 else "denied", details={"i": i, "note": "ünïcode"})


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def rehash(line: bytes, **changes) -> bytes:
    """The line with fields changed and its hash recomputed (what a careful forger does)."""
    from spe_audit.record import seal
    rec = json.loads(line)
    rec.pop("hash")
    rec.update(changes)
    return seal(rec).line
