"""DataPermit: a data access body's permit, the root of everything a project may do (cluster-scoped)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from .common import (AGE_COLUMN, Amount, CustomResource, DNS1123Label, DNS1123Subdomain, GpuModel, PrinterColumn, Quantity,
                     SpeModel, Status, Subject, cel, immutable, name_is_dns1123_label, name_not_reserved, nested,
                     unique_items, utc, validations)
from .subjects import same_subject

# The permit's namespace is "spe-<name>" and a namespace name is a DNS-1123 label (63 characters).
PERMIT_NAMESPACE_PREFIX = "spe-"
PERMIT_NAME_MAX_LENGTH = 63 - len(PERMIT_NAMESPACE_PREFIX)
# Names whose namespace spe-<name> belongs to the SPE itself (spe-system: the operator, the hub,
# the gateway). The operator also refuses, at reconcile time, any namespace that exists and is
# not the permit's own (``spe_operator.permits.namespace``).
RESERVED_PERMIT_NAMES = ("system",)
MAX_MEMBERS = 200
MAX_DATASETS = 64
MAX_GPU_MODELS = 16
MAX_REVIEWERS = 50


def permit_namespace(permit_name: str) -> str:
    """The namespace a permit's workspaces and exports live in."""
    return f"{PERMIT_NAMESPACE_PREFIX}{permit_name}"


# The permit's group in the identity provider (Keycloak): one flat top-level group per permit,
# holding the members while the permit is Pending or Active (empty otherwise). The hub reads it
# from the token's ``groups`` claim (names without a leading "/").
PERMIT_GROUP_PREFIX = "permit-"
# The operator's finalizer on a permit whose group it keeps (only while an identity provider
# is configured): the group goes with the permit.
IDENTITY_FINALIZER = "spe.ehds.io/identity-group"
# The one escape when the identity provider is gone for good: a permit annotated
# ``spe.ehds.io/keep-identity-group: "true"`` is let go without removing its group (an Event
# and an audit record say so). Never applied by the operator itself.
KEEP_GROUP_ANNOTATION = "spe.ehds.io/keep-identity-group"


def permit_group(permit_name: str) -> str:
    """The identity provider group of a permit's members."""
    return f"{PERMIT_GROUP_PREFIX}{permit_name}"


def parse_permit_group(group: str) -> str | None:
    """The permit a group name belongs to (a leading "/" of a full path is ignored), or None."""
    name = group.lstrip("/")
    if not name.startswith(PERMIT_GROUP_PREFIX):
        return None
    return name[len(PERMIT_GROUP_PREFIX):] or None


class MemberRole(StrEnum):
    RESEARCHER = "researcher"
    DATA_HOLDER_DELEGATE = "data-holder-delegate"


class PermitMember(SpeModel):
    """A person the permit names."""

    subject: Subject = Field(
        description="Identity subject as the identity provider (Keycloak) knows the person: username or e-mail.")
    role: MemberRole = Field(
        MemberRole.RESEARCHER,
        description="researcher: may use workspaces and request exports; data-holder-delegate: "
                    "represents a data holder (may inspect, not export).")
    display_name: str | None = Field(None, max_length=256, description="Full name, for people reading the permit.")


class GpuCeiling(SpeModel):
    """How many GPUs of one model the permit's workspaces may hold together."""

    model: GpuModel
    count: int = Field(description="Maximum GPUs of this model across the permit's workspaces.", ge=0, le=64)


class Ceilings(SpeModel):
    """Resource ceilings over all of the permit's workspaces together (also the namespace's ResourceQuota)."""

    cpu: Amount = Field("8", description="Total CPU (cores, e.g. 16 or 500m) the workspaces may request.")
    memory: Amount = Field("32Gi", description="Total memory the workspaces may request, e.g. 64Gi.")
    storage: Amount = Field("100Gi", description="Total persistent storage (home and outputs volumes), e.g. 500Gi.")
    gpus: list[GpuCeiling] = Field(
        default_factory=list, max_length=MAX_GPU_MODELS,
        description="GPUs per model; a model not listed may not be used. Empty: no GPUs.",
        json_schema_extra=validations(unique_items("spec.ceilings.gpus models", key="model")))
    max_workspaces: int = Field(10, ge=0, le=100, description="How many Workspaces the permit may have at once.")


class NkDominance(SpeModel):
    """(n, k) dominance: a cell is disclosive when its n largest contributors make up more than a share k of its total.

    The fields are not called ``n`` and ``k``: YAML 1.1 (kubectl's) reads a bare ``n`` as false."""

    contributors: int = Field(2, ge=1, le=10, description="n: the number of largest contributors considered.")
    share: float = Field(0.9, gt=0, le=1, description="k: the share of the cell total that the n largest may not exceed.")

    @property
    def n(self) -> int:
        return self.contributors

    @property
    def k(self) -> float:
        return self.share


class DisclosureThresholds(SpeModel):
    """Statistical disclosure control thresholds the automatic output checks apply."""

    min_cell_count: int = Field(10, ge=1, le=1000, description="Smallest count a table cell may show.")
    dominance: NkDominance = nested(NkDominance, "(n, k) dominance rule: contributors (n) and share (k).")
    p_ratio: float = Field(0.1, ge=0, le=1, description="p% rule: the second-largest contributor may not estimate the largest within this ratio.")
    zeros_disclosive: bool = Field(True, description="Treat structural zeros as disclosive (they reveal that nobody has a trait).")


class RecordLevelOutputs(SpeModel):
    """Whether tables with one row per person may leave the environment (after review).

    Off by default: the automatic checks block record-level tables. A data access body that
    permits them says so here, with the clause of the permit that allows it."""

    model_config = ConfigDict(json_schema_extra=validations(
        cel("!has(self.allowed) || !self.allowed || (has(self.basis) && self.basis.size() > 0)",
            "spec.exportPolicy.recordLevelOutputs.basis is required when allowed is true: cite the clause of the "
            "permit that allows record-level outputs", field_path=".basis", reason="FieldValueRequired"),
    ))

    allowed: bool = Field(False, description="Allow record-level tables (one row per person) to be exported after "
                                             "review; false (the default): the checks block them.")
    basis: str | None = Field(None, max_length=1024, description="The permit clause or data access body decision "
                                                                 "that allows record-level outputs (required when allowed).")


class ExportPolicy(SpeModel):
    """What may leave the environment and how it is reviewed."""

    model_config = ConfigDict(json_schema_extra=validations(
        cel("!has(self.reviewers) || size(self.reviewers) == 0 || size(self.reviewers) >= self.reviewersRequired",
            "spec.exportPolicy.reviewers must name at least reviewersRequired people (or none yet)",
            field_path=".reviewers"),
        cel("!has(self.recordLevelOutputs) || !has(self.recordLevelOutputs.allowed) || !self.recordLevelOutputs.allowed "
            "|| !has(self.reviewersRequired) || self.reviewersRequired >= 2",
            "spec.exportPolicy.reviewersRequired must be at least 2 when recordLevelOutputs.allowed is true",
            field_path=".reviewersRequired"),
    ))

    reviewers_required: int = Field(2, ge=1, le=5, description="Distinct reviewers who must approve an export; nobody reviews their own.")
    reviewers: list[Subject] = Field(
        default_factory=list, max_length=MAX_REVIEWERS,
        description="Who may review this permit's exports (identity subjects: the identity provider's user "
                    "names, compared without regard to case), besides holding the output-reviewer role. "
                    "Never a member of the permit. Empty: nobody reviews yet, exports wait.",
        json_schema_extra=validations(unique_items("spec.exportPolicy.reviewers")))
    allowed_file_types: list[str] = Field(
        default_factory=lambda: ["csv", "tsv", "json", "txt", "md", "pdf", "png", "svg"],
        max_length=64,
        description="File-name extensions that may be exported, lower case without the dot.",
        json_schema_extra={"items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9+-]{0,15}$", "maxLength": 16},
                           **validations(unique_items("spec.exportPolicy.allowedFileTypes"))})
    max_file_size: Quantity = Field("50Mi", description="Largest single file that may be exported.")
    disclosure: DisclosureThresholds = nested(DisclosureThresholds, "Disclosure-control thresholds.")
    retention_days: int = Field(90, ge=1, le=3650, description="Days quarantined copies and decisions are kept.")
    record_level_outputs: RecordLevelOutputs = nested(
        RecordLevelOutputs, "Whether record-level tables (one row per person) may leave; off by default.")


class DataPermitSpec(SpeModel):
    """What the data access body permitted: who, which data, for what, until when, with what resources."""

    model_config = ConfigDict(json_schema_extra=validations(
        cel("!has(self.notBefore) || self.notAfter > self.notBefore",
            "spec.notAfter must be after spec.notBefore", field_path=".notAfter"),
        cel("!self.suspended || (has(self.suspensionReason) && self.suspensionReason.size() > 0)",
            "spec.suspensionReason is required when spec.suspended is true", field_path=".suspensionReason",
            reason="FieldValueRequired"),
        cel("!self.revoked || (has(self.revocationReason) && self.revocationReason.size() > 0)",
            "spec.revocationReason is required when spec.revoked is true", field_path=".revocationReason",
            reason="FieldValueRequired"),
        cel("!has(self.exportPolicy) || !has(self.exportPolicy.reviewers) || "
            "self.exportPolicy.reviewers.all(r, !self.members.exists(m, m.subject.lowerAscii() == r.lowerAscii()))",
            "spec.exportPolicy.reviewers may not name a member of the permit: members never review its exports",
            field_path=".exportPolicy.reviewers", reason="FieldValueForbidden"),
        cel("!oldSelf.revoked || self.revoked",
            "spec.revoked cannot be unset: revocation is final, issue a new permit instead",
            field_path=".revoked", reason="FieldValueForbidden"),
    ))

    permit_id: str = Field(
        description="The permit's identifier issued by the health data access body, e.g. HDAB-NL-2026-0042. Immutable.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$", min_length=1, max_length=128,
        json_schema_extra=validations(immutable("spec.permitId")))
    purpose: str = Field(
        description="The purpose of processing as the permit states it (EHDS Article 53).",
        min_length=10, max_length=4000)
    applicant: str | None = Field(None, max_length=256, description="The organisation the permit was issued to.")
    members: list[PermitMember] = Field(
        min_length=1, max_length=MAX_MEMBERS,
        description="The people the permit names; only they reach its workspaces.",
        json_schema_extra=validations(unique_items("spec.members subjects", key="subject")))
    datasets: list[DNS1123Label] = Field(
        min_length=1, max_length=MAX_DATASETS,
        description="Names of the Dataset objects the permit grants access to.",
        json_schema_extra=validations(unique_items("spec.datasets")))
    not_before: datetime | None = Field(None, description="Start of validity (RFC 3339); absent: valid from creation.")
    not_after: datetime = Field(description="End of validity (RFC 3339); workspaces stop at this instant.")
    ceilings: Ceilings = nested(Ceilings, "Resource ceilings over all the permit's workspaces.")
    export_policy: ExportPolicy = nested(ExportPolicy, "Review and disclosure control for exports.")
    tier: int = Field(2, ge=1, le=3, description="Security tier of the data (1 lowest, 3 highest); higher tiers get stricter defaults.")
    suspended: bool = Field(False, description="Temporarily halt the permit: workspaces stop, exports are refused; reversible.")
    suspension_reason: str | None = Field(None, max_length=1024, description="Why the permit is suspended (required when suspended).")
    revoked: bool = Field(False, description="Revoke the permit for good: workspaces stop, members lose access; irreversible.")
    revocation_reason: str | None = Field(None, max_length=1024, description="Why the permit was revoked (required when revoked).")




class DataPermitPhase(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    EXPIRED = "Expired"
    REVOKED = "Revoked"


class GpuAllocation(SpeModel):
    """GPUs of one model held by the permit's running workspaces."""

    model: GpuModel
    count: int = Field(ge=0, description="GPUs of this model held.")


class Allocation(SpeModel):
    """What the permit's workspaces hold now."""

    cpu: Amount | None = Field(None, description="CPU held by the workspaces.")
    memory: Amount | None = Field(None, description="Memory held by the workspaces.")
    storage: Amount | None = Field(None, description="Storage held by the workspaces.")
    gpus: list[GpuAllocation] = Field(default_factory=list, max_length=MAX_GPU_MODELS, description="GPUs held, per model.")


MAX_GPU_LEDGER = 500


class WorkspaceGpuHours(SpeModel):
    """GPU-hours one workspace has used (kept after the workspace is deleted)."""

    workspace: DNS1123Label = Field(description="The Workspace's name.")
    uid: str = Field(max_length=64, description="The Workspace's metadata.uid (a re-created one is another entry).")
    hours: float = Field(ge=0, description="GPU-hours (GPUs held x time) the GPU agents measured.")


class DataPermitStatus(Status):
    """What the operator made of the permit."""

    phase: DataPermitPhase | None = Field(None, description="Pending, Active, Suspended, Expired or Revoked.")
    namespace: DNS1123Label | None = Field(None, description="The namespace of the permit's workspaces and exports.")
    group: str | None = Field(
        None, max_length=512,
        description="The identity provider group holding the members (permit-<name>); unset while no identity "
                    "provider is configured.")
    members: int | None = Field(None, ge=0, description="Number of members.")
    # Any name the API server accepts for a Workspace (a subdomain): a Workspace stored before its
    # name rule existed must not make every status write of its permit fail.
    workspaces: list[DNS1123Subdomain] = Field(default_factory=list, max_length=100, description="Names of the permit's Workspaces.")
    allocated: Allocation | None = Field(None, description="Resources the workspaces hold against the ceilings.")
    gpu_hours: float | None = Field(None, ge=0, description="GPU-hours used by the permit's workspaces, deleted ones included.")
    gpu_ledger: list[WorkspaceGpuHours] = Field(
        default_factory=list, max_length=MAX_GPU_LEDGER,
        description="GPU-hours per workspace (uid), the terms of gpuHours.")


class DataPermit(CustomResource):
    """A data permit: the people, datasets, purpose, validity window and resource ceilings a data
    access body approved. The operator gives it a namespace, quota, network policies and an
    identity group, and stops everything when it expires or is revoked."""

    KIND: ClassVar[str] = "DataPermit"
    PLURAL: ClassVar[str] = "datapermits"
    SINGULAR: ClassVar[str] = "datapermit"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("dp",)
    NAMESPACED: ClassVar[bool] = False
    NAME_MAX_LENGTH: ClassVar[int] = PERMIT_NAME_MAX_LENGTH
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        name_is_dns1123_label("it names the permit's namespace spe-<name>"),
        name_not_reserved(RESERVED_PERMIT_NAMES, "spe-<name> would be a namespace the SPE or the cluster owns"),
    )
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Permit ID", ".spec.permitId", description="The access body's permit identifier."),
        PrinterColumn("Phase", ".status.phase", description="Pending, Active, Suspended, Expired or Revoked."),
        PrinterColumn("Tier", ".spec.tier", "integer", priority=1),
        PrinterColumn("Members", ".status.members", "integer", description="Number of members."),
        PrinterColumn("Namespace", ".status.namespace", description="Namespace of the workspaces."),
        PrinterColumn("GPU Hours", ".status.gpuHours", "number", priority=1),
        PrinterColumn("Not After", ".spec.notAfter", description="End of validity (a date column would show a future instant as <invalid>)."),
        AGE_COLUMN,
    )

    kind: Literal["DataPermit"] = "DataPermit"
    spec: DataPermitSpec
    status: DataPermitStatus = Field(default_factory=DataPermitStatus)

    def phase_at(self, now: datetime) -> DataPermitPhase:
        """The phase the spec implies at ``now`` (the reconciler's and the webhook's shared rule)."""
        spec = self.spec
        if spec.revoked:
            return DataPermitPhase.REVOKED
        if utc(now) >= utc(spec.not_after):
            return DataPermitPhase.EXPIRED
        if spec.suspended:
            return DataPermitPhase.SUSPENDED
        if spec.not_before is not None and utc(now) < utc(spec.not_before):
            return DataPermitPhase.PENDING
        return DataPermitPhase.ACTIVE

    def member(self, subject: str) -> PermitMember | None:
        return next((m for m in self.spec.members if same_subject(m.subject, subject)), None)

    @property
    def target_namespace(self) -> str:
        return self.status.namespace or permit_namespace(self.name)
