"""Workspace: one notebook server (or desktop) for a permit's members, in the permit's namespace."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from .common import (AGE_COLUMN, Amount, CustomResource, DNS1123Label, DNS1123Subdomain, GpuModel, PrinterColumn,
                     Quantity, SpeModel, Status, Subject, cel, immutable, name_is_dns1035_label, nested, unique_items,
                     validations)

# The StatefulSet carries the Workspace's name; its pods get the label
# controller-revision-hash "<statefulset>-<10 characters>", which must fit a 63-character label
# value, and the children are "<name>-home", "<name>-outputs": 40 keeps them all valid.
WORKSPACE_NAME_MAX_LENGTH = 40
MAX_GPUS_PER_WORKSPACE = 8
MAX_WORKSPACE_MEMBERS = 50


class GpuRequest(SpeModel):
    """GPUs for the workspace, all of one model."""

    model_config = ConfigDict(json_schema_extra=validations(cel(
        f"self.count >= 1 && self.count <= {MAX_GPUS_PER_WORKSPACE}",
        f"spec.resources.gpus.count must be between 1 and {MAX_GPUS_PER_WORKSPACE}; remove spec.resources.gpus for a CPU-only workspace",
        field_path=".count")))

    count: int = Field(description=f"Number of GPUs (1 to {MAX_GPUS_PER_WORKSPACE}).")
    model: GpuModel


class WorkspaceResources(SpeModel):
    """Compute for the workspace's server; counted against the permit's ceilings."""

    cpu: Quantity = Field("2", description="CPU cores requested (and limited to), e.g. 4 or 1500m.")
    memory: Quantity = Field("8Gi", description="Memory requested (and limited to), e.g. 32Gi.")
    gpus: GpuRequest | None = Field(None, description="GPUs; absent for a CPU-only workspace.")


class WorkspaceStorage(SpeModel):
    """The workspace's own volumes (home and outputs); counted against the permit's storage ceiling."""

    size: Quantity = Field("10Gi", description="Size of the home volume; outputs get the same.")
    storage_class_name: DNS1123Subdomain | None = Field(None, description="StorageClass; the cluster default when absent.")


class WorkspaceSpec(SpeModel):
    """Which permit, who, which tool, how big, which data, and whether it runs."""

    permit: DNS1123Label = Field(
        description="Name of the DataPermit this workspace works under. Immutable.",
        json_schema_extra=validations(immutable("spec.permit")))
    display_name: str | None = Field(None, max_length=256, description="A title shown in JupyterHub.")
    members: list[Subject] = Field(
        min_length=1, max_length=MAX_WORKSPACE_MEMBERS,
        description="Identity subjects who may use the workspace; each must be a member of the permit.",
        json_schema_extra=validations(unique_items("spec.members")))
    tool: DNS1123Label = Field(description="Name of an approved Tool from the catalogue, e.g. jupyterlab.")
    resources: WorkspaceResources = nested(WorkspaceResources, "CPU, memory and GPUs of the server.")
    storage: WorkspaceStorage = nested(WorkspaceStorage, "Size of the workspace's volumes.")
    datasets: list[DNS1123Label] = Field(
        default_factory=list, max_length=64,
        description="Datasets mounted read-only at /data/<name>; each must be in the permit.",
        json_schema_extra=validations(unique_items("spec.datasets")))
    idle_timeout_minutes: int = Field(
        120, ge=0, le=10080, description="Stop the server after this many idle minutes; 0 never stops it.")
    running: bool = Field(False, description="true runs the server (one replica); false stops it, keeping the volumes.")


class WorkspacePhase(StrEnum):
    PENDING = "Pending"
    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    BLOCKED = "Blocked"


class GpuTelemetryState(StrEnum):
    MEASURED = "Measured"
    GPU_LOST = "GpuLost"
    UNAVAILABLE = "Unavailable"


class GpuUsage(SpeModel):
    """What the node's GPU agent (spe-gpu-agent) measured of the server's GPUs: a short summary,
    rewritten at most once per publishing interval (and at once when the server turns GPU-idle
    or busy again), not a time series. The operator stops a server whose GPUs stayed idle for
    its idle timeout."""

    state: GpuTelemetryState = Field(description="Measured; GpuLost (a GPU fell off the bus); Unavailable (no NVML).")
    sampled_at: datetime = Field(description="When the agent last sampled the GPUs.")
    devices: int = Field(ge=0, le=64, description="GPUs the server holds.")
    uuids: list[str] = Field(default_factory=list, max_length=64,
                             description="UUIDs of the GPUs (or MIG instances) its processes run on.",
                             json_schema_extra={"items": {"type": "string", "maxLength": 96}})
    utilization_percent: int = Field(0, ge=0, le=100, description="Mean GPU utilisation over the held GPUs, last sample.")
    memory_used: Amount | None = Field(None, description="GPU memory its processes use, e.g. 3Gi (0 when none).")
    memory_total: Amount | None = Field(None, description="Memory of the GPUs its processes run on.")
    threshold_percent: int = Field(ge=0, le=100, description="Utilisation under which the agent counts a GPU idle.")
    idle_since: datetime | None = Field(
        None, description="Since when every GPU of the server stayed under the threshold; absent while busy.")
    gpu_hours: float = Field(0, ge=0, description="GPU-hours the server has held (GPUs x time), cumulative.")
    message: str | None = Field(None, max_length=1024, description="What went wrong with the measurement, and what to do.")


class WorkspaceStatus(Status):
    """Where the workspace's server is."""

    phase: WorkspacePhase | None = Field(None, description="Pending, Stopped, Starting, Running or Blocked.")
    url: str | None = Field(None, max_length=2048, description="Where the running server answers (for the hub).")
    node: str | None = Field(None, max_length=253, description="The node the server runs on.")
    gpus: int | None = Field(None, ge=0, description="GPUs held by the running server.")
    started_at: datetime | None = Field(None, description="When the server last became ready.")
    last_activity: datetime | None = Field(None, description="Last activity seen, for the idle timeout.")
    gpu_usage: GpuUsage | None = Field(None, description="GPU utilisation and memory, from the node's GPU agent.")


class Workspace(CustomResource):
    """An isolated workspace under a data permit: a notebook server with the permit's datasets
    mounted read-only, no route out but the hub and the egress gateway, GPUs scheduled by model.
    Set spec.running to start or stop it."""

    KIND: ClassVar[str] = "Workspace"
    PLURAL: ClassVar[str] = "workspaces"
    SINGULAR: ClassVar[str] = "workspace"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ws",)
    NAMESPACED: ClassVar[bool] = True
    NAME_MAX_LENGTH: ClassVar[int] = WORKSPACE_NAME_MAX_LENGTH
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        name_is_dns1035_label("it names the workspace's Service, which must be a DNS-1035 label"),
    )
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Permit", ".spec.permit"),
        PrinterColumn("Tool", ".spec.tool"),
        PrinterColumn("Running", ".spec.running", "boolean", description="Desired: should the server run."),
        PrinterColumn("Phase", ".status.phase", description="Pending, Stopped, Starting, Running or Blocked."),
        PrinterColumn("GPUs", ".spec.resources.gpus.count", "integer"),
        PrinterColumn("GPU Model", ".spec.resources.gpus.model", priority=1),
        PrinterColumn("URL", ".status.url", priority=1),
        AGE_COLUMN,
    )

    kind: Literal["Workspace"] = "Workspace"
    spec: WorkspaceSpec
    status: WorkspaceStatus = Field(default_factory=WorkspaceStatus)

    @property
    def gpu_count(self) -> int:
        return self.spec.resources.gpus.count if self.spec.resources.gpus else 0

    @property
    def gpu_model(self) -> str | None:
        return self.spec.resources.gpus.model if self.spec.resources.gpus else None
