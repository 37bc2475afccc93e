"""Dataset: DICOM studies a data holder ingests, de-identified, into an encrypted volume (cluster-scoped)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from .common import (AGE_COLUMN, CustomResource, DNS1123Label, DNS1123Subdomain, PrinterColumn, Quantity,
                     SecretKeyRef, SpeModel, Status, cel, immutable, name_is_dns1123_label, nested, unique_items,
                     validations)

# A dataset's name appears in its volume claim ("dataset-<name>"), its ingest Job
# ("ingest-<name>-<generation>", whose pods carry the Job name in a 63-character label) and
# its mount path /data/<name>; 40 leaves room for those prefixes and suffixes.
DATASET_NAME_MAX_LENGTH = 40


class AnonymisationProfile(StrEnum):
    BASIC = "basic"


class AnonymisationOption(StrEnum):
    """The options of DICOM PS3.15 Annex E (Table E.1-1)."""

    CLEAN_PIXEL_DATA = "clean-pixel-data"
    CLEAN_RECOGNIZABLE_VISUAL_FEATURES = "clean-recognizable-visual-features"
    CLEAN_GRAPHICS = "clean-graphics"
    CLEAN_STRUCTURED_CONTENT = "clean-structured-content"
    CLEAN_DESCRIPTORS = "clean-descriptors"
    RETAIN_LONGITUDINAL_FULL_DATES = "retain-longitudinal-full-dates"
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain-longitudinal-modified-dates"
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"
    RETAIN_INSTITUTION_IDENTITY = "retain-institution-identity"
    RETAIN_UIDS = "retain-uids"
    RETAIN_SAFE_PRIVATE = "retain-safe-private"


class DatasetSource(SpeModel):
    """Where the original (identifiable) DICOM files are read from. Immutable."""

    claim_name: DNS1123Subdomain = Field(description="PersistentVolumeClaim holding the source files.")
    claim_namespace: DNS1123Label = Field(
        "spe-system", description="Namespace of the claim (the operator's namespace by default).")
    path: str = Field(
        "/", description="Directory within the volume, absolute, e.g. /exports/prostate-mr.",
        pattern=r"^/[^\x00]*$", max_length=1024,
        json_schema_extra=validations(cel("!self.matches('(^|/)[.][.](/|$)')",
                                          "spec.source.path must not contain '..' segments")))


class Anonymisation(SpeModel):
    """De-identification as DICOM PS3.15 Annex E defines it."""

    model_config = ConfigDict(json_schema_extra=validations(cel(
        "!has(self.options) || !('retain-longitudinal-full-dates' in self.options && "
        "'retain-longitudinal-modified-dates' in self.options)",
        "spec.anonymisation.options: choose either retain-longitudinal-full-dates or "
        "retain-longitudinal-modified-dates, not both", field_path=".options")))

    profile: AnonymisationProfile = Field(
        AnonymisationProfile.BASIC, description="The base profile: basic (Basic Application Level Confidentiality Profile).")
    options: list[AnonymisationOption] = Field(
        default_factory=lambda: [AnonymisationOption.CLEAN_DESCRIPTORS,
                                 AnonymisationOption.RETAIN_LONGITUDINAL_MODIFIED_DATES,
                                 AnonymisationOption.RETAIN_PATIENT_CHARACTERISTICS],
        max_length=12,
        description="Profile options (PS3.15 Table E.1-1); retain-longitudinal-modified-dates shifts dates per patient.",
        json_schema_extra=validations(unique_items("spec.anonymisation.options")))
    date_shift_max_days: int = Field(
        365, ge=1, le=3650, description="Upper bound of the per-patient date shift when dates are modified.")
    drop_screenshots: bool = Field(True, description="Drop secondary-capture screenshots (burned-in text).")
    quarantine_secondary_captures: bool = Field(
        True, description="Hold other secondary captures for manual review instead of ingesting them.")


class Pseudonymisation(SpeModel):
    """Keyed hashing (BLAKE2b) of patient identifiers, per project and site."""

    key_secret: SecretKeyRef = Field(description="Secret key of the keyed hash; never leaves the data holder.")
    site: DNS1123Label = Field(description="Site (data holder) identifier mixed into the hash, e.g. umcg.")
    project: DNS1123Label | None = Field(None, description="Project identifier mixed into the hash; pseudonyms differ across projects.")


class KAnonymity(SpeModel):
    """Re-identification risk: every combination of quasi-identifiers must occur at least k times."""

    threshold: int = Field(5, ge=2, le=100, description="Smallest k accepted; the dataset is refused below it.")
    quasi_identifiers: list[str] = Field(
        default_factory=lambda: ["PatientSex", "PatientAge", "PatientSize", "PatientWeight"],
        max_length=32,
        description="DICOM keywords treated as quasi-identifiers.",
        json_schema_extra={"items": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9]*$", "maxLength": 64}})


class DatasetStorage(SpeModel):
    """The encrypted volume the de-identified data are written to."""

    size: Quantity = Field(description="Size of the dataset volume, e.g. 200Gi.")
    storage_class_name: DNS1123Subdomain | None = Field(None, description="StorageClass; the cluster default when absent.")
    encryption_key_secret: SecretKeyRef | None = Field(
        None, description="Key encrypting the volume's contents; absent: the storage class's own encryption.")


class DatasetSpec(SpeModel):
    """Where the data come from, how they are de-identified, and where they go."""

    description: str | None = Field(None, max_length=4000, description="What the dataset contains, for catalogues.")
    modalities: list[str] = Field(
        default_factory=list, max_length=16, description="DICOM modalities, e.g. MR, CT, SEG.",
        json_schema_extra={"items": {"type": "string", "pattern": r"^[A-Z][A-Z0-9]{1,15}$", "maxLength": 16}})
    source: DatasetSource = Field(description="Where the original files are. Immutable.",
                                  json_schema_extra=validations(immutable("spec.source")))
    anonymisation: Anonymisation = nested(Anonymisation, "De-identification profile and options.")
    pseudonymisation: Pseudonymisation = Field(description="Pseudonym key and scope.")
    k_anonymity: KAnonymity = nested(KAnonymity, "Re-identification risk threshold.")
    storage: DatasetStorage = Field(description="Volume for the de-identified data.")
    signing_key_secret: SecretKeyRef = Field(description="Private key (Ed25519, PEM) signing the dataset's integrity manifest.")
    parallelism: int | None = Field(
        None, ge=1, le=64, description="Shards the ingest runs in parallel (an Indexed Job, then one merge); "
                                       "default: the operator's setting (ingest_shards).")


class DatasetPhase(StrEnum):
    PENDING = "Pending"
    INGESTING = "Ingesting"
    READY = "Ready"
    FAILED = "Failed"
    QUARANTINED = "Quarantined"


class DatasetCounts(SpeModel):
    """What the ingest saw and kept."""

    patients: int = Field(0, ge=0, description="Distinct (pseudonymised) patients.")
    studies: int = Field(0, ge=0, description="DICOM studies.")
    series: int = Field(0, ge=0, description="DICOM series.")
    instances: int = Field(0, ge=0, description="DICOM instances read.")
    accepted: int = Field(0, ge=0, description="Instances written to the dataset.")
    rejected: int = Field(0, ge=0, description="Instances refused.")
    quarantined: int = Field(0, ge=0, description="Instances held for manual review.")
    dropped: int = Field(0, ge=0, description="Instances left out by rule (screenshots, duplicates).")
    rejected_by_reason: dict[str, int] = Field(
        default_factory=dict, description="Refused instances per reason.",
        json_schema_extra={"additionalProperties": {"type": "integer", "minimum": 0,
                                                    "description": "Instances refused for this reason."}})


class DatasetStatus(Status):
    """The result of the last ingest."""

    phase: DatasetPhase | None = Field(None, description="Pending, Ingesting, Ready, Failed or Quarantined.")
    counts: DatasetCounts | None = Field(None, description="Counts of the last ingest.")
    efficiency_percent: float | None = Field(None, ge=0, le=100, description="Accepted instances as a share of those read.")
    k_anonymity: int | None = Field(None, ge=0, description="The k reached over the quasi-identifiers.")
    manifest_digest: str | None = Field(None, pattern=r"^sha256:[a-f0-9]{64}$", description="sha256 of the signed manifest.")
    claim_name: DNS1123Subdomain | None = Field(None, description="The claim holding the de-identified data.")
    volume_name: DNS1123Subdomain | None = Field(
        None, description="The PersistentVolume holding the de-identified data (bound to claimName); workspaces "
                          "mount it read-only through per-namespace read-only volumes pointing at the same source.")
    job_name: DNS1123Subdomain | None = Field(None, description="The last ingest Job.")
    revision: int | None = Field(None, ge=1, description="The Dataset generation the last ingest ran for.")
    files_processed: int | None = Field(
        None, ge=0, description="Files the running ingest has processed so far (while Ingesting).")
    started_at: datetime | None = Field(None, description="When the last ingest started.")
    completed_at: datetime | None = Field(None, description="When the last ingest ended.")


class Dataset(CustomResource):
    """A de-identified imaging dataset: the operator runs an ingest Job that de-identifies,
    pseudonymises and checks the source studies into an encrypted volume with a signed manifest.
    Workspaces mount it read-only at /data/<name>."""

    KIND: ClassVar[str] = "Dataset"
    PLURAL: ClassVar[str] = "datasets"
    SINGULAR: ClassVar[str] = "dataset"
    # kubectl resolves "ds" to apps/DaemonSet first (built-in short names win); "dset" is unambiguous.
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ds", "dset")
    NAMESPACED: ClassVar[bool] = False
    NAME_MAX_LENGTH: ClassVar[int] = DATASET_NAME_MAX_LENGTH
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        name_is_dns1123_label("it names the dataset's claims, volumes and mount path /data/<name>, "
                              "and permits and workspaces list datasets by DNS-1123 label"),
    )
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Phase", ".status.phase", description="Pending, Ingesting, Ready, Failed or Quarantined."),
        PrinterColumn("Files", ".status.filesProcessed", "integer", description="Files processed so far while Ingesting."),
        PrinterColumn("Patients", ".status.counts.patients", "integer"),
        PrinterColumn("Studies", ".status.counts.studies", "integer"),
        PrinterColumn("Instances", ".status.counts.accepted", "integer", description="Instances accepted."),
        PrinterColumn("K", ".status.kAnonymity", "integer", description="k-anonymity reached."),
        PrinterColumn("Size", ".spec.storage.size", priority=1),
        AGE_COLUMN,
    )

    kind: Literal["Dataset"] = "Dataset"
    spec: DatasetSpec
    status: DatasetStatus = Field(default_factory=DatasetStatus)
