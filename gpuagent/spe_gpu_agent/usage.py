"""Per workspace: since when its GPUs are idle, the GPU-hours it held, and when its status
summary is worth writing (rate-limited). Pure: samples and settings in, state and summary out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from spe_api import GpuTelemetryState, GpuUsage, format_quantity
from spe_api.common import utc

from .attribution import WorkspaceSample

# A restarted agent keeps the idle run it reported only when its report is this recent.
RESUME_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class Track:
    idle_since: datetime | None = None
    last_time: datetime | None = None
    gpu_hours: float = 0.0
    published: GpuUsage | None = None
    published_at: datetime | None = None


def resume(previous: GpuUsage | None, now: datetime) -> Track:
    """The state of a workspace the agent (re)discovers, from its last published summary."""
    if previous is None:
        return Track()
    idle_since = previous.idle_since
    if previous.state != GpuTelemetryState.MEASURED or now - utc(previous.sampled_at) > RESUME_WINDOW:
        idle_since = None
    return Track(idle_since=utc(idle_since) if idle_since else None, gpu_hours=previous.gpu_hours)


def step(track: Track, sample: WorkspaceSample, threshold: int) -> Track:
    """Account one sample: the idle run (every GPU under the threshold; unmeasurable is busy)
    and the GPU-hours held since the previous sample."""
    idle = sample.peak is not None and sample.peak < threshold
    hours = track.gpu_hours
    if track.last_time is not None and sample.time > track.last_time:
        hours += sample.pod.gpus * (sample.time - track.last_time).total_seconds() / 3600
    return replace(track, idle_since=(track.idle_since or sample.time) if idle else None,
                   last_time=sample.time, gpu_hours=hours)


def summary(track: Track, sample: WorkspaceSample, threshold: int) -> GpuUsage:
    return GpuUsage(
        state=GpuTelemetryState.MEASURED, sampled_at=sample.time.replace(microsecond=0), devices=sample.pod.gpus,
        uuids=list(sample.uuids), utilization_percent=sample.utilization,
        memory_used=format_quantity(Decimal(sample.memory_used), "bytes"),
        memory_total=format_quantity(Decimal(sample.memory_total), "bytes") if sample.memory_total else None,
        threshold_percent=threshold,
        idle_since=track.idle_since.replace(microsecond=0) if track.idle_since else None,
        gpu_hours=round(track.gpu_hours, 4))


def failed(track: Track, *, state: GpuTelemetryState, devices: int, threshold: int, message: str,
           now: datetime) -> GpuUsage:
    """The summary while the GPUs cannot be measured: no idle verdict (never a stop on no data)."""
    return GpuUsage(state=state, sampled_at=now.replace(microsecond=0), devices=devices, threshold_percent=threshold,
                    gpu_hours=round(track.gpu_hours, 4), message=message[:1024])


def should_publish(track: Track, new: GpuUsage, now: datetime, interval: float) -> bool:
    """Write when nothing was written yet, when the verdict changes (idle / busy / cannot
    measure) or the GPUs change, and otherwise at most once per ``interval``."""
    old = track.published
    if old is None or track.published_at is None:
        return True
    if (old.idle_since is None) != (new.idle_since is None) or old.state != new.state:
        return True
    if old.uuids != new.uuids or old.devices != new.devices:
        return True
    return (now - track.published_at).total_seconds() >= interval
