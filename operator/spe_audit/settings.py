"""Typed settings for the audit trail and its telemetry: built once at start-up, passed down.

Nothing here reads the environment on import; :meth:`AuditSettings.from_env` does, when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field

from .durability import FsyncPolicy


class TelemetrySettings(BaseModel):
    """Where OpenTelemetry data go. No endpoint: nothing is exported and the helpers are no-ops."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP base URL, e.g. http://otel-collector:4318 "
                          "(/v1/logs, /v1/traces, /v1/metrics are appended)")
    service_name: str = Field("spe-operator", description="the service.name resource attribute")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (auth)")
    timeout_s: float = Field(10.0, gt=0, description="per-export timeout")
    metric_interval_s: float = Field(60.0, gt=0, description="how often metrics are pushed")


class AuditSettings(BaseModel):
    """One component's audit trail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path = Field(description="the active log file, e.g. /var/lib/spe/audit/operator.jsonl")
    signing_key_file: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs checkpoints; none: unsigned")
    checkpoint_every: int = Field(1000, ge=1, description="a checkpoint follows each record whose "
                                                          "seq is a multiple of this")
    fsync: FsyncPolicy = Field(FsyncPolicy.ALWAYS, description="see FsyncPolicy")
    rotate_bytes: int | None = Field(256 * 1024 * 1024, ge=4096,
                                     description="rotate the active file at this size; none: never")
    actor: str = Field("system:spe-audit", description="actor named on checkpoint records")
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "AuditSettings":
        """Read ``SPE_AUDIT_*`` and the standard ``OTEL_*`` variables (only when called)."""
        env = os.environ if environ is None else environ
        values: dict = {}
        for var, key in [("SPE_AUDIT_PATH", "path"), ("SPE_AUDIT_SIGNING_KEY", "signing_key_file"),
                         ("SPE_AUDIT_CHECKPOINT_EVERY", "checkpoint_every"),
                         ("SPE_AUDIT_FSYNC", "fsync"), ("SPE_AUDIT_ROTATE_BYTES", "rotate_bytes"),
                         ("SPE_AUDIT_ACTOR", "actor")]:
            if env.get(var):
                values[key] = env[var]
        tel: dict = {}
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            tel["otlp_endpoint"] = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        if env.get("OTEL_SERVICE_NAME"):
            tel["service_name"] = env["OTEL_SERVICE_NAME"]
        if tel:
            values["telemetry"] = TelemetrySettings(**tel)
        values.update(overrides)
        return cls(**values)
