"""OpenTelemetry metrics of the agent, per GPU and per workspace.

- ``spe.gpu.utilization`` (gauge, %), ``spe.gpu.memory.used`` / ``spe.gpu.memory.total`` (gauge, By):
  attributes ``gpu.uuid``, ``gpu.model``, ``gpu.index``, ``k8s.node.name``;
- ``spe.workspace.gpu.utilization`` (gauge, %), ``spe.workspace.gpu.memory.used`` (gauge, By),
  ``spe.workspace.gpu.time`` (counter, s of GPU held): ``k8s.namespace.name``, ``spe.workspace``,
  ``spe.permit``, ``k8s.node.name``;
- ``spe.gpu.nvml.errors`` (counter): ``error.type`` (NvmlUnavailable, GpuLost).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics as _metrics

from .attribution import WorkspaceSample
from .nvml import Inventory

SCOPE = "spe_gpu_agent"


class GpuMetrics:
    def __init__(self, meter_provider: Any = None, node: str = ""):
        self.provider = meter_provider
        self.node = node
        meter = (meter_provider or _metrics.NoOpMeterProvider()).get_meter(SCOPE)
        self.gpu_util = meter.create_gauge("spe.gpu.utilization", unit="%", description="GPU utilisation")
        self.gpu_mem_used = meter.create_gauge("spe.gpu.memory.used", unit="By", description="GPU memory used")
        self.gpu_mem_total = meter.create_gauge("spe.gpu.memory.total", unit="By", description="GPU memory")
        self.ws_util = meter.create_gauge("spe.workspace.gpu.utilization", unit="%",
                                          description="mean utilisation of the GPUs a workspace holds")
        self.ws_mem = meter.create_gauge("spe.workspace.gpu.memory.used", unit="By",
                                         description="GPU memory a workspace's processes use")
        self.ws_time = meter.create_counter("spe.workspace.gpu.time", unit="s",
                                            description="GPU-seconds a workspace held")
        self.errors = meter.create_counter("spe.gpu.nvml.errors", unit="{error}",
                                           description="NVML failures, by kind")

    @classmethod
    def otlp(cls, endpoint: str, interval_s: float, node: str) -> "GpuMetrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{endpoint.rstrip('/')}/v1/metrics"),
                                               export_interval_millis=int(interval_s * 1000))
        resource = Resource.create({"service.name": "spe-gpu-agent", "k8s.node.name": node})
        return cls(MeterProvider(resource=resource, metric_readers=[reader]), node)

    def record_inventory(self, inventory: Inventory) -> None:
        for gpu in inventory.gpus:
            if gpu.uuid is None:
                continue
            attrs = {"gpu.uuid": gpu.uuid, "gpu.model": gpu.model or "", "gpu.index": gpu.index,
                     "k8s.node.name": self.node}
            if gpu.utilization is not None:
                self.gpu_util.set(gpu.utilization, attrs)
            self.gpu_mem_used.set(gpu.memory_used, attrs)
            self.gpu_mem_total.set(gpu.memory_total, attrs)

    def record_workspace(self, sample: WorkspaceSample, held_seconds: float) -> None:
        attrs = {"k8s.namespace.name": sample.pod.namespace, "spe.workspace": sample.pod.workspace,
                 "spe.permit": sample.pod.permit, "k8s.node.name": self.node}
        self.ws_util.set(sample.utilization, attrs)
        self.ws_mem.set(sample.memory_used, attrs)
        if held_seconds > 0:
            self.ws_time.add(held_seconds, attrs)

    def record_error(self, kind: str) -> None:
        self.errors.add(1, {"error.type": kind, "k8s.node.name": self.node})

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
