"""The agent's typed settings: built once at start-up (``from_env`` reads the environment only
when called), passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AgentSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    node_name: str | None = Field(None, description="This node's name (the DaemonSet passes spec.nodeName).")
    kubeconfig: str | None = Field(None, description="Kubeconfig path (default: $KUBECONFIG, in-cluster).")
    sample_interval: float = Field(10.0, gt=0, description="Seconds between two NVML samples.")
    publish_interval: float = Field(60.0, gt=0, description="At most one Workspace status write per this many "
                                                            "seconds, unless it turns idle or busy.")
    idle_threshold_percent: int = Field(5, ge=0, le=100, description="A GPU under this utilisation is idle.")
    proc_root: str = Field("/proc", description="Where the host's processes are (the DaemonSet mounts the host's /proc).")
    label_nodes: bool = Field(True, description="Add the GPU model and count labels where they are missing.")
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP base URL for the metrics; none: no export.")
    metric_interval: float = Field(60.0, gt=0, description="Seconds between two metric exports.")
    request_timeout: float = Field(15.0, gt=0, description="Timeout of each API request.")
    max_backoff: float = Field(300.0, gt=0, description="Longest wait between two tries while NVML is unavailable.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "AgentSettings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, key in [("NODE_NAME", "node_name"), ("KUBECONFIG", "kubeconfig"),
                         ("SPE_GPU_SAMPLE_INTERVAL", "sample_interval"),
                         ("SPE_GPU_PUBLISH_INTERVAL", "publish_interval"),
                         ("SPE_GPU_IDLE_THRESHOLD", "idle_threshold_percent"),
                         ("SPE_GPU_PROC_ROOT", "proc_root"),
                         ("SPE_GPU_METRIC_INTERVAL", "metric_interval"), ("SPE_GPU_MAX_BACKOFF", "max_backoff"),
                         ("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint")]:
            if env.get(var):
                values[key] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
