"""Tool: an approved analysis environment in the catalogue (cluster-scoped)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from .common import (AGE_COLUMN, CustomResource, ImageRef, PrinterColumn, Quantity, SpeModel, Status,
                     Subject, cel, name_is_dns1123_label, nested, validations)
from .reasons import Message, Reason


class ToolKind(StrEnum):
    JUPYTER = "jupyter"
    DESKTOP = "desktop"
    BATCH = "batch"


class ScanSummary(SpeModel):
    """The vulnerability scan the approval relied on."""

    scanner: str = Field(max_length=128, description="Scanner and version, e.g. trivy 0.58.")
    scanned_at: datetime = Field(description="When the image was scanned.")
    critical: int = Field(0, ge=0, description="Critical findings.")
    high: int = Field(0, ge=0, description="High findings.")
    medium: int = Field(0, ge=0, description="Medium findings.")
    low: int = Field(0, ge=0, description="Low findings.")
    report: str | None = Field(None, max_length=2048, description="Where the full report is kept.")


class Approval(SpeModel):
    """Who approved the image for use with health data, and on what evidence."""

    approved_by: Subject = Field(description="Identity subject of the approver.")
    approved_at: datetime = Field(description="When it was approved.")
    scan: ScanSummary = Field(description="The scan the approval relied on.")
    notes: str | None = Field(None, max_length=4096, description="What the review looked at, and any conditions.")


class DefaultResources(SpeModel):
    """Resources a Workspace gets when it does not say."""

    cpu: Quantity = Field("2", description="CPU cores.")
    memory: Quantity = Field("8Gi", description="Memory.")


class ToolSpec(SpeModel):
    """The image and how it may be used."""

    model_config = ConfigDict(json_schema_extra=validations(
        cel("!self.revoked || (has(self.revocationReason) && self.revocationReason.size() > 0)",
            "spec.revocationReason is required when spec.revoked is true", field_path=".revocationReason",
            reason="FieldValueRequired"),
        cel("self.image == oldSelf.image || (has(self.approval) && has(oldSelf.approval) && "
            "self.approval.approvedAt != oldSelf.approval.approvedAt) || !has(self.approval)",
            "changing spec.image invalidates the approval: record a new spec.approval (approvedAt, scan) "
            "for the new image, or remove spec.approval", field_path=".image"),
        cel("!has(self.approval) || self.approval.scan.critical == 0",
            "spec.approval.scan.critical must be 0: an image with critical findings cannot be approved",
            field_path=".approval.scan.critical"),
    ))

    display_name: str = Field(max_length=256, description="Name shown to researchers, e.g. JupyterLab (PyTorch, MONAI).")
    description: str = Field("", max_length=4000, description="What the tool contains and is for.")
    image: ImageRef = Field(description="The container image, pinned by digest: registry/repository[:tag]@sha256:<64 hex>.")
    kind: ToolKind = Field(ToolKind.JUPYTER, description="jupyter (JupyterLab server), desktop (remote desktop) or batch.")
    gpu_capable: bool = Field(False, description="The image has CUDA libraries; required for GPU workspaces.")
    default_resources: DefaultResources = nested(DefaultResources, "Resources when the Workspace does not say.")
    approval: Approval | None = Field(None, description="The approval record; a Tool without one cannot be used.")
    revoked: bool = Field(False, description="Withdraw the tool: no new workspace may use it.")
    revocation_reason: str | None = Field(None, max_length=1024, description="Why the tool was revoked.")


class ToolPhase(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REVOKED = "Revoked"


class ToolStatus(Status):
    phase: ToolPhase | None = Field(None, description="Pending (no approval), Approved or Revoked.")


class Tool(CustomResource):
    """A catalogue entry: a container image, pinned by digest, that was reviewed and scanned and
    may be used in Workspaces."""

    KIND: ClassVar[str] = "Tool"
    PLURAL: ClassVar[str] = "tools"
    SINGULAR: ClassVar[str] = "tool"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tool",)
    NAMESPACED: ClassVar[bool] = False
    NAME_MAX_LENGTH: ClassVar[int] = 63
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        name_is_dns1123_label("workspaces name their tool by DNS-1123 label (spec.tool) and the pod carries it"),
    )
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Display Name", ".spec.displayName"),
        PrinterColumn("Kind", ".spec.kind"),
        PrinterColumn("GPU", ".spec.gpuCapable", "boolean"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Approved By", ".spec.approval.approvedBy"),
        PrinterColumn("Image", ".spec.image", priority=1),
        AGE_COLUMN,
    )

    kind: Literal["Tool"] = "Tool"
    spec: ToolSpec
    status: ToolStatus = Field(default_factory=ToolStatus)

    def effective_phase(self) -> tuple[ToolPhase, str, str]:
        """(phase, reason, message) from the spec alone: the webhook and the reconcilers use this,
        so a Tool is usable the moment it is approved, whether or not its status was written yet."""
        spec = self.spec
        if spec.revoked:
            return ToolPhase.REVOKED, Reason.TOOL_REVOKED, Message.TOOL_REVOKED.format(
                reason=spec.revocation_reason or "no reason given")
        if spec.approval is None:
            return ToolPhase.PENDING, Reason.NOT_APPROVED, Message.TOOL_NOT_APPROVED
        if spec.approval.scan.critical > 0:
            return ToolPhase.PENDING, Reason.SCAN_FAILED, Message.TOOL_SCAN_CRITICAL.format(
                critical=spec.approval.scan.critical)
        return ToolPhase.APPROVED, Reason.APPROVED, Message.TOOL_APPROVED.format(
            by=spec.approval.approved_by, at=spec.approval.approved_at.isoformat())

    @property
    def approved(self) -> bool:
        return self.effective_phase()[0] == ToolPhase.APPROVED
