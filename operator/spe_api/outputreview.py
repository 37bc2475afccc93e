"""OutputReview: a researcher's request to export files, its automatic checks and the reviewers' votes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from .common import (AGE_COLUMN, CustomResource, DNS1123Label, PrinterColumn, Sha256, SpeModel, Status,
                     Subject, cel, immutable, validations)

MAX_FILES = 500
FILE_NAME_MAX_LENGTH = 1024


class ExportFile(SpeModel):
    """One file of the request, as copied into quarantine."""

    model_config = ConfigDict(json_schema_extra=validations(
        cel("!self.name.startsWith('/') && !self.name.matches('(^|/)[.][.]?(/|$)')",
            "spec.files[].name must be a relative path without '.' or '..' segments, e.g. results/table1.csv",
            field_path=".name"),
    ))

    name: str = Field(min_length=1, max_length=FILE_NAME_MAX_LENGTH,
                      description="Path relative to the workspace's outputs directory, e.g. results/table1.csv.")
    size: int = Field(ge=0, le=2**40, description="Size in bytes.")
    sha256: Sha256 = Field(description="SHA-256 of the quarantined copy, lower-case hex.")


class OutputReviewSpec(SpeModel):
    """What is asked to leave, by whom and why. Immutable once submitted."""

    model_config = ConfigDict(json_schema_extra=validations(immutable("spec")))

    requester: Subject = Field(description="Identity subject of the researcher asking.")
    workspace: DNS1123Label = Field(description="The Workspace (same namespace) the files come from.")
    files: list[ExportFile] = Field(
        min_length=1, max_length=MAX_FILES, description="The files to export.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    justification: str = Field(min_length=10, max_length=8000,
                               description="Why the files are needed outside and why they are not disclosive.")


class OutputReviewPhase(StrEnum):
    SUBMITTED = "Submitted"
    CHECKING = "Checking"
    AWAITING_REVIEW = "AwaitingReview"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    RETURNED = "Returned"
    WITHDRAWN = "Withdrawn"
    RELEASED = "Released"
    EXPIRED = "Expired"
    CANCELLED = "Cancelled"


class CheckResult(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


class FileCheck(SpeModel):
    """One automatic disclosure check on one file."""

    file: str = Field(max_length=FILE_NAME_MAX_LENGTH, description="The file's name as in spec.files.")
    check: str = Field(max_length=128, description="The check, e.g. file-type, size, dicom-content, small-cells, dominance.")
    result: CheckResult = Field(description="pass, warn or fail.")
    message: str = Field("", max_length=4096, description="What the check found.")


class VoteDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Vote(SpeModel):
    """A reviewer's decision."""

    reviewer: Subject = Field(description="Identity subject of the reviewer (never the requester).")
    decision: VoteDecision = Field(description="approve or reject.")
    comment: str = Field("", max_length=4096, description="The reviewer's reasoning, shown to the requester.")
    at: datetime = Field(description="When the vote was cast.")


class OutputReviewStatus(Status):
    """Checks, votes and the outcome."""

    phase: OutputReviewPhase | None = Field(None, description="Submitted, Checking, AwaitingReview, Approved, Rejected, Returned (changes requested), Withdrawn, Released, Expired or Cancelled (permit revoked).")
    permit: DNS1123Label | None = Field(None, description="The DataPermit the workspace works under.")
    checks: list[FileCheck] = Field(default_factory=list, max_length=10 * MAX_FILES, description="Automatic check results per file.")
    votes: list[Vote] = Field(default_factory=list, max_length=20, description="Reviewers' votes.")
    approvals: int | None = Field(None, ge=0, description="Approving votes so far.")
    approvals_required: int | None = Field(None, ge=0, description="Approving votes needed (from the permit's export policy).")
    decision: VoteDecision | None = Field(None, description="The final outcome once decided.")
    decided_at: datetime | None = Field(None, description="When the outcome was decided.")
    released_at: datetime | None = Field(None, description="When the files were made downloadable.")
    expires_at: datetime | None = Field(None, description="When the download (or the quarantined copy) expires.")


class OutputReview(CustomResource):
    """A request to take files out of a workspace: the egress gateway quarantines a copy, runs the
    automatic disclosure checks and collects the reviewers' votes; only approved files are released.
    Created only by the egress gateway."""

    KIND: ClassVar[str] = "OutputReview"
    PLURAL: ClassVar[str] = "outputreviews"
    SINGULAR: ClassVar[str] = "outputreview"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("or",)
    NAMESPACED: ClassVar[bool] = True
    NAME_MAX_LENGTH: ClassVar[int] = 63
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Requester", ".spec.requester"),
        PrinterColumn("Workspace", ".spec.workspace"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Approvals", ".status.approvals", "integer"),
        PrinterColumn("Required", ".status.approvalsRequired", "integer"),
        AGE_COLUMN,
    )

    kind: Literal["OutputReview"] = "OutputReview"
    spec: OutputReviewSpec
    status: OutputReviewStatus = Field(default_factory=OutputReviewStatus)
