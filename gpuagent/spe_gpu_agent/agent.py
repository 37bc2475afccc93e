"""The agent's loop: sample NVML, attribute the GPUs to workspaces, publish. Thin: the
decisions are in ``attribution``, ``usage`` and ``labels``.

It never crash-loops: NVML missing or failing is reported (a Warning Event on the Node, the
``GpuTelemetry`` condition and ``status.gpuUsage.state`` of the node's GPU workspaces) and
retried with backoff; an API error is logged and the next tick tries again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

from pydantic import ValidationError

from spe_api import ConditionType, GpuTelemetryState, GpuUsage, Message, Reason, Workspace, set_condition
from spe_kube import ApiError, KubeClient, kind_for
from spe_kube.events import NORMAL, WARNING, post_event

from . import labels, usage
from .attribution import POD_SELECTOR, WorkspacePod, WorkspaceSample, attribute
from .cgroup import pod_uid_of
from .metrics import GpuMetrics
from .nvml import Inventory, Nvml, NvmlUnavailable
from .settings import AgentSettings

log = logging.getLogger(__name__)

NODE = kind_for("v1", "Node")
POD = kind_for("v1", "Pod")
WORKSPACE = kind_for("spe.ehds.io/v1alpha1", "Workspace")
FIELD_MANAGER = labels.FIELD_MANAGER


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Health:
    """The node's telemetry state, for Events on transitions only."""

    reason: str = Reason.GPU_MEASURED
    message: str = ""


@dataclass
class TickResult:
    inventory: Inventory | None
    samples: dict[str, WorkspaceSample] = field(default_factory=dict)
    problem: NvmlUnavailable | None = None


class Agent:
    def __init__(self, settings: AgentSettings, kube: KubeClient | None, metrics: GpuMetrics | None = None,
                 nvml_factory: Callable[[], Nvml] = Nvml, clock: Callable[[], datetime] = _now):
        self.settings = settings
        self.kube = kube
        self.metrics = metrics or GpuMetrics(node=settings.node_name or "")
        self._nvml_factory = nvml_factory
        self._clock = clock
        self._nvml: Nvml | None = None
        self.tracks: dict[str, usage.Track] = {}
        self.health = Health()
        self._labelled: dict[str, str] | None = None

    # --- sampling ---------------------------------------------------------------------------

    def read_inventory(self) -> Inventory:
        if self._nvml is None:
            self._nvml = self._nvml_factory()
        try:
            return self._nvml.inventory()
        except NvmlUnavailable:
            self.close()
            raise

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None

    def pid_pods(self, inventory: Inventory) -> dict[int, str]:
        out = {}
        for gpu in inventory.gpus:
            for proc in [*gpu.processes, *(p for m in gpu.mig for p in m.processes)]:
                uid = pod_uid_of(proc.pid, self.settings.proc_root)
                if uid:
                    out[proc.pid] = uid
        return out

    async def node_pods(self) -> list[WorkspacePod]:
        items = await self.kube.list(POD, label_selector=POD_SELECTOR,
                                     field_selector=f"spec.nodeName={self.settings.node_name}")
        return [WorkspacePod.from_pod(p) for p in items
                if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]

    # --- one tick ---------------------------------------------------------------------------

    async def tick(self) -> TickResult:
        now = self._clock()
        try:
            inventory = self.read_inventory()
        except NvmlUnavailable as problem:
            self.metrics.record_error(problem.reason)
            await self._set_health(problem.reason, problem.message)
            if self.kube is not None:
                await self._publish_failure(GpuTelemetryState.UNAVAILABLE, Reason.NVML_UNAVAILABLE,
                                            problem.message, now)
            return TickResult(None, problem=problem)
        self.metrics.record_inventory(inventory)
        if inventory.lost:
            self.metrics.record_error(Reason.GPU_LOST)
            await self._set_health(Reason.GPU_LOST, " ".join(g.error or "" for g in inventory.lost))
        else:
            await self._set_health(Reason.GPU_MEASURED, "")
        if self.kube is None:
            return TickResult(inventory)
        if self.settings.label_nodes:
            await self._label_node(inventory)
        pods = await self.node_pods()
        samples = attribute(inventory, self.pid_pods(inventory), pods, now)
        await self._publish(samples, inventory, now)
        self._forget_except(set(samples))
        return TickResult(inventory, samples)

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.settings.sample_interval
        while not stop.is_set():
            try:
                result = await self.tick()
                if result.problem is not None:
                    delay = min(self.settings.max_backoff, delay * 2)
                    log.warning("%s (retry in %.0fs)", result.problem.message, delay)
                else:
                    delay = self.settings.sample_interval
            except (ApiError, OSError, asyncio.TimeoutError) as exc:
                log.warning("tick failed, next try in %.0fs: %s", delay, exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
        self.close()

    # --- publishing -------------------------------------------------------------------------

    async def _label_node(self, inventory: Inventory) -> None:
        wanted = labels.wanted_labels(inventory)
        if wanted == self._labelled:
            return
        node = await self.kube.get(NODE, self.settings.node_name)
        body = labels.label_apply(node, inventory)
        if body is not None:
            await self.kube.apply(body, field_manager=FIELD_MANAGER)
            log.info("node %s labelled %s", self.settings.node_name, body["metadata"]["labels"])
        self._labelled = wanted

    async def _track_for(self, sample: WorkspaceSample, now: datetime) -> usage.Track:
        track = self.tracks.get(sample.pod.pod_uid)
        if track is None:
            body = await self.kube.get_or_none(WORKSPACE, sample.pod.workspace, sample.pod.namespace)
            previous = None
            if body is not None:
                try:
                    previous = Workspace.from_manifest(body).status.gpu_usage
                except ValidationError:
                    previous = None
            track = usage.resume(previous, now)
        return track

    async def _publish(self, samples: dict[str, WorkspaceSample], inventory: Inventory, now: datetime) -> None:
        threshold = self.settings.idle_threshold_percent
        for uid, sample in samples.items():
            track = await self._track_for(sample, now)
            before = track.last_time
            track = usage.step(track, sample, threshold)
            self.metrics.record_workspace(sample, sample.pod.gpus * (now - before).total_seconds() if before else 0.0)
            if inventory.lost and len(sample.uuids) < sample.pod.gpus:
                message = " ".join(g.error or "" for g in inventory.lost)
                track = replace(track, idle_since=None)  # a lost GPU is not an idle one
                summary = usage.failed(track, state=GpuTelemetryState.GPU_LOST, devices=sample.pod.gpus,
                                       threshold=threshold, message=message, now=now)
                cond = (False, Reason.GPU_LOST, message)
            else:
                summary = usage.summary(track, sample, threshold)
                cond = (True, Reason.GPU_MEASURED, _measured_message(summary))
            if usage.should_publish(track, summary, now, self.settings.publish_interval):
                if await self._write(sample.pod, summary, cond, now):
                    track = replace(track, published=summary, published_at=now)
            self.tracks[uid] = track

    async def _publish_failure(self, state: GpuTelemetryState, reason: str, message: str, now: datetime) -> None:
        try:
            pods = await self.node_pods()
        except ApiError as exc:
            log.warning("cannot list the node's workspace pods: %s", exc)
            return
        for pod in pods:
            if pod.gpus == 0:
                continue
            track = self.tracks.get(pod.pod_uid) or usage.Track()
            summary = usage.failed(track, state=state, devices=pod.gpus, threshold=self.settings.idle_threshold_percent,
                                   message=message, now=now)
            if usage.should_publish(track, summary, now, self.settings.publish_interval):
                if await self._write(pod, summary, (False, reason, message), now):
                    self.tracks[pod.pod_uid] = replace(track, idle_since=None, last_time=None,
                                                       published=summary, published_at=now)

    async def _write(self, pod: WorkspacePod, summary: GpuUsage, cond: tuple[bool, str, str], now: datetime) -> bool:
        """Server-side apply of the agent's part of the Workspace's status (its own field manager:
        it owns status.gpuUsage and the GpuTelemetry condition, nothing else)."""
        body = await self.kube.get_or_none(WORKSPACE, pod.workspace, pod.namespace)
        if body is None:
            return False
        ws = Workspace.from_manifest(body)
        ok, reason, message = cond
        conds = set_condition(ws.status.conditions, ConditionType.GPU_TELEMETRY, ok, reason, message,
                              ws.generation, now)
        mine = next(c for c in conds if c.type == ConditionType.GPU_TELEMETRY)
        try:
            await self.kube.apply_status({
                "apiVersion": ws.api_version, "kind": ws.kind,
                "metadata": {"name": ws.name, "namespace": ws.namespace},
                "status": {"gpuUsage": summary.to_dict(), "conditions": [mine.to_dict()]}}, field_manager=FIELD_MANAGER)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def _set_health(self, reason: str, message: str) -> None:
        if reason == self.health.reason:
            return
        old, self.health = self.health, Health(reason, message)
        if self.kube is None or not self.settings.node_name:
            return
        warning = reason != Reason.GPU_MEASURED
        text = message if warning else Message.GPU_NVML_BACK.format(reason=old.reason)
        await self._node_event(reason, text, warning)

    async def _node_event(self, reason: str, message: str, warning: bool) -> None:
        node = self.settings.node_name
        await post_event(self.kube, {"apiVersion": "v1", "kind": "Node", "name": node},
                         type_=WARNING if warning else NORMAL, reason=reason, message=message,
                         now=self._clock(), host=node)

    def _forget_except(self, live: set[str]) -> None:
        for uid in [u for u in self.tracks if u not in live]:
            del self.tracks[uid]


def _measured_message(summary: GpuUsage) -> str:
    if summary.idle_since is not None:
        return Message.GPU_IDLE_SINCE.format(devices=summary.devices, threshold=summary.threshold_percent,
                                             since=summary.idle_since.strftime('%Y-%m-%dT%H:%M:%SZ'))
    return Message.GPU_MEASURED.format(devices=summary.devices, utilization=summary.utilization_percent)


def inventory_report(inventory: Inventory) -> dict[str, Any]:
    """The inventory as plain data (for ``--once`` and the device check)."""
    return {"driver": inventory.driver, "gpus": [{
        "index": g.index, "uuid": g.uuid, "model": g.model, "memoryTotal": g.memory_total,
        "memoryUsed": g.memory_used, "utilizationPercent": g.utilization, "migEnabled": g.mig_enabled,
        "migInstances": [{"uuid": m.uuid, "memoryTotal": m.memory_total,
                          "processes": [{"pid": p.pid, "memoryUsed": p.memory_used} for p in m.processes]}
                         for m in g.mig],
        "processes": [{"pid": p.pid, "memoryUsed": p.memory_used} for p in g.processes],
        "lost": g.lost, "error": g.error} for g in inventory.gpus]}
