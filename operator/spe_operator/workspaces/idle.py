"""Idle stop: after ``spec.idleTimeoutMinutes`` without activity the server is stopped.

Activity is the annotation ``spe.ehds.io/last-activity`` (RFC 3339) that the hub updates from
the server's own activity reports; the server's start counts as activity, so a server nobody
opens is stopped one timeout after it became ready. Pure functions of their inputs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from spe_api import Workspace
from spe_api.common import utc

from . import names


def parse_timestamp(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp (``Z`` or an offset), or None when absent or malformed."""
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def last_activity(ws: Workspace, started_at: datetime | None) -> datetime | None:
    """The later of the hub's activity annotation and the server's start."""
    seen = [t for t in (parse_timestamp(ws.metadata.annotations.get(names.ANNOTATION_LAST_ACTIVITY)),
                        utc(started_at) if started_at else None) if t is not None]
    return max(seen) if seen else None


def idle_deadline(ws: Workspace, started_at: datetime | None) -> datetime | None:
    """When the running server becomes idle, or None (not running, no timeout, never started)."""
    minutes = ws.spec.idle_timeout_minutes
    if not ws.spec.running or minutes <= 0:
        return None
    last = last_activity(ws, started_at)
    return None if last is None else last + timedelta(minutes=minutes)


def is_idle(ws: Workspace, started_at: datetime | None, now: datetime) -> bool:
    deadline = idle_deadline(ws, started_at)
    return deadline is not None and utc(now) >= deadline
