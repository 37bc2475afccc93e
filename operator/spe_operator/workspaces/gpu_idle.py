"""GPU-idle stop: a running server holding GPUs whose GPUs stayed under the agent's threshold
for ``spec.idleTimeoutMinutes`` is stopped like an idle server, with the reason ``GpuIdle``.

The samples are the node GPU agent's summary in ``status.gpuUsage`` (``spe-gpu-agent``): since
when every GPU of the server stayed under its threshold (``idleSince``) and when it last
looked (``sampledAt``). Only a fresh measurement of this run of the server counts: a summary
older than ``settings.gpu_usage_max_age`` (the agent stopped, the node went away), one taken
before the server started, or one that could not measure (a lost GPU, no NVML) never stops a
server. Pure functions of the workspace, the settings and the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from spe_api import GpuTelemetryState, GpuUsage, Workspace
from spe_api.common import utc


def _usable(ws: Workspace, started_at: datetime | None) -> GpuUsage | None:
    usage = ws.status.gpu_usage
    if (not ws.spec.running or ws.gpu_count == 0 or ws.spec.idle_timeout_minutes <= 0 or usage is None
            or usage.state != GpuTelemetryState.MEASURED or usage.idle_since is None or started_at is None):
        return None
    if utc(usage.sampled_at) < utc(started_at):
        return None  # measured during an earlier run of the server
    return usage


def gpu_idle_deadline(ws: Workspace, started_at: datetime | None) -> datetime | None:
    """When the server's GPUs will have been idle for its timeout, or None (busy, no GPUs, no
    measurement, no timeout). Idleness counts from the server's start at the earliest."""
    usage = _usable(ws, started_at)
    if usage is None:
        return None
    since = max(utc(usage.idle_since), utc(started_at))
    return since + timedelta(minutes=ws.spec.idle_timeout_minutes)


def is_gpu_idle(ws: Workspace, started_at: datetime | None, now: datetime, max_age_s: float) -> bool:
    """True when the deadline has passed and the agent still reported idle recently."""
    deadline = gpu_idle_deadline(ws, started_at)
    if deadline is None or utc(now) < deadline:
        return False
    usage = ws.status.gpu_usage
    return utc(now) - utc(usage.sampled_at) <= timedelta(seconds=max_age_s)
