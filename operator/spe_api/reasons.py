"""Condition types, reasons and status messages: the constants, in one place.

Reasons are CamelCase (Kubernetes conventions); messages are written for the person running
``kubectl describe`` and say what to do. Message templates use ``str.format`` fields.
"""

from __future__ import annotations


class ConditionType:
    """Condition types used across the kinds."""

    READY = "Ready"
    # DataPermit
    NAMESPACE_READY = "NamespaceReady"
    IDENTITY_SYNCED = "IdentitySynced"  # the permit's group in the identity provider (Keycloak)
    WITHIN_VALIDITY = "WithinValidity"
    ACTIVE = "Active"  # phase is Active: inside the window, neither suspended nor revoked
    # Dataset
    INGESTED = "Ingested"
    ANONYMITY_MET = "AnonymityMet"
    # Workspace
    PERMIT_ACTIVE = "PermitActive"
    DATASETS_READY = "DatasetsReady"
    DATASETS_VERIFIED = "DatasetsVerified"  # the server pod's verification of each dataset's manifest
    TOOL_APPROVED = "ToolApproved"
    WITHIN_CEILINGS = "WithinCeilings"
    SCHEDULED = "Scheduled"
    VOLUMES_READY = "VolumesReady"
    GPU_TELEMETRY = "GpuTelemetry"  # written by spe-gpu-agent
    NAMESPACE_ISOLATED = "NamespaceIsolated"
    # OutputReview
    CHECKED = "Checked"
    DECIDED = "Decided"
    # Tool
    APPROVED = "Approved"


class Reason:
    """Condition reasons. One word each, CamelCase."""

    # generic
    RECONCILED = "Reconciled"
    PROGRESSING = "Progressing"
    FAILED = "Failed"
    INVALID_SPEC = "InvalidSpec"
    # permit lifecycle
    ACTIVE = "Active"
    ISSUED = "Issued"  # Event: the permit's first reconcile
    CHANGED = "Changed"  # Event: a new generation of the permit
    NOT_YET_VALID = "NotYetValid"
    EXPIRED = "Expired"
    SUSPENDED = "Suspended"
    REVOKED = "Revoked"
    NAMESPACE_TERMINATING = "NamespaceTerminating"
    NAMESPACE_TAKEN = "NamespaceTaken"
    NAMESPACE_RESERVED = "NamespaceReserved"
    # whether a workspace's namespace is isolated (its permit's policies and quota in place)
    ISOLATED = "Isolated"
    NOT_ISOLATED = "NamespaceNotIsolated"
    ISOLATION_NOT_CHECKED = "NotChecked"
    # why a Workspace's PermitActive condition is False (set by the permit reconciler when it
    # stops the workspace; the workspace reconciler uses the same: ``permit_phase_reason``)
    PERMIT_NOT_YET_VALID = "PermitNotYetValid"
    PERMIT_EXPIRED = "PermitExpired"
    PERMIT_SUSPENDED = "PermitSuspended"
    PERMIT_REVOKED = "PermitRevoked"
    # the permit's identity group (IdentitySynced)
    GROUP_SYNCED = "GroupSynced"
    GROUP_EMPTIED = "GroupEmptied"
    MEMBERS_NOT_FOUND = "MembersNotFound"
    IDENTITY_PROVIDER_NOT_CONFIGURED = "IdentityProviderNotConfigured"
    IDENTITY_PROVIDER_UNREACHABLE = "IdentityProviderUnreachable"
    IDENTITY_PROVIDER_ERROR = "IdentityProviderError"
    GROUP_LEFT_BEHIND = "GroupLeftBehind"
    # references from a Workspace / a DataPermit
    PERMIT_NOT_FOUND = "PermitNotFound"
    PERMIT_NOT_ACTIVE = "PermitNotActive"
    WRONG_NAMESPACE = "WrongNamespace"
    MEMBER_NOT_IN_PERMIT = "MemberNotInPermit"
    DATASET_NOT_IN_PERMIT = "DatasetNotInPermit"
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATASET_NOT_READY = "DatasetNotReady"
    DATASETS_READY = "DatasetsReady"
    TOOL_NOT_FOUND = "ToolNotFound"
    TOOL_NOT_APPROVED = "ToolNotApproved"
    TOOL_REVOKED = "ToolRevoked"
    TOOL_NOT_GPU_CAPABLE = "ToolNotGpuCapable"
    CEILING_EXCEEDED = "CeilingExceeded"
    GPU_MODEL_NOT_PERMITTED = "GpuModelNotPermitted"
    WORKSPACE_LIMIT_REACHED = "WorkspaceLimitReached"
    WITHIN_CEILINGS = "WithinCeilings"
    # workspace volumes and server
    NO_ENCRYPTED_STORAGE_CLASS = "NoEncryptedStorageClass"
    STORAGE_CLASS_NOT_ENCRYPTED = "StorageClassNotEncrypted"
    UNENCRYPTED_STORAGE_ALLOWED = "UnencryptedStorageAllowed"
    VOLUMES_READY = "VolumesReady"
    DATASET_VOLUME_MISSING = "DatasetVolumeMissing"
    DATASET_VERIFICATION_NOT_CONFIGURED = "DatasetVerificationNotConfigured"
    DATASET_VERIFICATION_FAILED = "DatasetVerificationFailed"
    DATASETS_VERIFIED = "DatasetsVerified"
    VERIFICATION_PENDING = "VerificationPending"
    APPLY_FAILED = "ApplyFailed"
    STOPPED = "Stopped"
    STOPPING = "Stopping"
    STARTING = "Starting"
    STARTED = "Started"  # Event: the server runs
    SERVER_READY = "ServerReady"
    IDLE_TIMEOUT = "IdleTimeout"
    GPU_IDLE = "GpuIdle"
    # GPU telemetry (spe-gpu-agent)
    GPU_MEASURED = "Measured"
    GPU_LOST = "GpuLost"
    NVML_UNAVAILABLE = "NvmlUnavailable"
    SCHEDULED = "Scheduled"
    UNSCHEDULABLE = "Unschedulable"
    POD_NOT_CREATED = "PodNotCreated"
    BLOCKED = "Blocked"
    # exports
    NOT_GATEWAY = "NotEgressGateway"
    # tools
    APPROVED = "Approved"
    NOT_APPROVED = "NotApproved"
    SCAN_FAILED = "ScanHasCriticalFindings"
    # the install's preflight checks (spe-operator doctor)
    PREFLIGHT_PASSED = "PreflightPassed"
    PREFLIGHT_FAILED = "PreflightFailed"


class Message:
    """Status message templates (``.format(**fields)``)."""

    PERMIT_ACTIVE = "Permit {permit_id} is active until {not_after}."
    PERMIT_NOT_YET_VALID = "Permit {permit_id} becomes valid at {not_before}; workspaces cannot start before then."
    PERMIT_EXPIRED = "Permit {permit_id} expired at {not_after}; running workspaces were stopped. Ask the data access body for an extension."
    PERMIT_SUSPENDED = "Permit {permit_id} is suspended: {reason}. Set spec.suspended to false to resume."
    PERMIT_REVOKED = "Permit {permit_id} was revoked: {reason}. Revocation is final."
    PERMIT_WITHIN_VALIDITY = "Permit {permit_id} is within its validity window until {not_after}."
    PERMIT_NAMESPACE_READY = "Namespace {namespace} with quota, limits, network policies and access bindings is in place."
    PERMIT_NAMESPACE_FAILED = "Could not put namespace {namespace} and its policies in place: {error}. The operator retries."
    PERMIT_NAMESPACE_TERMINATING = "Namespace {namespace} is being deleted; the operator re-creates it once it is gone."
    PERMIT_NAMESPACE_TAKEN = (
        "Namespace {namespace} already exists and is not this permit's own (it has no owner reference to "
        "DataPermit {permit} with uid {uid}); the operator neither adopts nor changes it. Delete or rename "
        "that namespace, or issue the permit under another name.")
    PERMIT_NAMESPACE_RESERVED = (
        "Namespace {namespace} belongs to the SPE or the cluster itself; a permit may not use it. "
        "Issue the permit under another name.")
    PERMIT_ISSUED = "Permit {permit_id} issued: namespace {namespace}, {members} member(s), valid until {not_after}."
    PERMIT_CHANGED = "Permit {permit_id} changed (generation {generation})."
    PERMIT_STOPPED_WORKSPACES = "Stopped {count} workspace(s) in {namespace}: {names}. {detail}"
    WORKSPACE_STOPPED_BY_PERMIT = "Stopped: {detail}"
    IDENTITY_GROUP_SYNCED = "Group {group} in realm {realm} holds the permit's {members} member(s)."
    IDENTITY_MEMBERS_NOT_FOUND = (
        "Group {group} in realm {realm} holds {members} member(s); not found in the identity provider (exact "
        "user name or e-mail): {missing}. Create these users or correct spec.members; the others are in sync.")
    IDENTITY_GROUP_EMPTIED = (
        "Group {group} in realm {realm} is empty while the permit is {phase}; {ended} hub session(s) of its "
        "former members were ended.")
    IDENTITY_NOT_CONFIGURED = (
        "No identity provider is configured (operator settings keycloak_url and keycloak_client_secret), so "
        "the permit's members are not synced to a group; the hub cannot see them.")
    IDENTITY_UNREACHABLE = (
        "The identity provider at {url} could not be reached ({error}); group {group} may be out of date. The "
        "operator retries with backoff; the namespace and workspaces are not affected.")
    IDENTITY_ERROR = (
        "The identity provider refused the group sync of {group} ({error}); check the operator's client "
        "{client} and its service account roles (query-users, view-users, manage-users, query-groups). The "
        "operator retries with backoff.")
    IDENTITY_GROUP_NOT_REMOVED_UNCONFIGURED = (
        "Group {group} cannot be removed: no identity provider is configured. Configure it, or annotate the "
        "permit {annotation}=true to let it go without removing the group.")
    IDENTITY_GROUP_NOT_REMOVED = (
        "Group {group} could not be removed ({error}); the operator retries. If the identity provider is gone "
        "for good, annotate the permit {annotation}=true to let it go without removing the group.")
    IDENTITY_GROUP_LEFT_BEHIND = (
        "Permit deleted with annotation {annotation}: group {group} was NOT removed from the identity provider; "
        "remove it there by hand if it still exists.")
    WORKSPACE_PERMIT_ACTIVE = "Permit {permit} is active."
    TOOL_APPROVED = "Approved by {by} at {at}."
    TOOL_APPROVED_EVENT = "Tool {tool} ({image}) is approved for workspaces."
    TOOL_NOT_APPROVED = "No approval record: set spec.approval after review and scan of the image."
    TOOL_REVOKED = "Revoked: {reason}."
    TOOL_SCAN_CRITICAL = "The scan recorded {critical} critical finding(s); rebuild the image and record a clean scan."
    # GpuTelemetry (spe-gpu-agent)
    GPU_IDLE_SINCE = "{devices} GPU(s) under {threshold}% utilisation since {since}."
    GPU_MEASURED = "{devices} GPU(s) at {utilization}% mean utilisation."
    GPU_NVML_BACK = "NVML answers again ({reason} is over)."


def permit_phase_reason(phase: str) -> str:
    """The reason a Workspace's PermitActive condition carries for its permit's ``phase``
    (``DataPermitPhase`` value); ``Reason.ACTIVE`` when the permit is active."""
    return {
        "Pending": Reason.PERMIT_NOT_YET_VALID,
        "Expired": Reason.PERMIT_EXPIRED,
        "Suspended": Reason.PERMIT_SUSPENDED,
        "Revoked": Reason.PERMIT_REVOKED,
    }.get(str(phase), Reason.ACTIVE)


class WorkspaceMessage:
    """Workspace status and Event messages (``.format(**fields)``)."""

    PERMIT_ACTIVE = "DataPermit {permit!r} is active until {not_after}."
    PERMIT_NOT_FOUND = "DataPermit {permit!r} does not exist; the server cannot start until it does."
    NO_ENCRYPTED_STORAGE_CLASS = (
        "No encrypted storage class is configured (operator setting encrypted_storage_classes), so no "
        "volume was created; configure one (or, for development only, allow_unencrypted_storage).")
    STORAGE_CLASS_NOT_ENCRYPTED = (
        "spec.storage.storageClassName {storage_class!r} is not one of the encrypted classes ({encrypted}); "
        "no volume was created: choose an encrypted class or leave the field empty.")
    UNENCRYPTED_STORAGE_ALLOWED = (
        "Volumes use {storage_class}, which is not known to encrypt at rest: allowed only because the "
        "development setting allow_unencrypted_storage is on.")
    VOLUMES_READY = "Home and outputs volumes from encrypted storage class {storage_class!r}."
    APPLY_FAILED = "Could not apply {what}: {error}"
    DATASET_NOT_FOUND = "Dataset {dataset!r} does not exist; remove it from spec.datasets or ask the data holder."
    DATASET_NOT_READY = "Dataset {dataset!r} is {phase}, not Ready; the server starts when it is."
    DATASET_VOLUME_MISSING = (
        "Dataset {dataset!r} is Ready but has no volume produced by the operator's ingest ({detail}); the "
        "server starts once an ingest of it completes.")
    DATASET_VERIFICATION_NOT_CONFIGURED = (
        "Dataset {dataset!r} cannot be verified before use: the operator has no {what} (setting {setting}); "
        "no server mounts a dataset it cannot verify.")
    DATASET_VERIFICATION_FAILED = (
        "Dataset {dataset!r} failed the check of its signed manifest: {problem}; the server does not start. "
        "Ask the data holder to re-ingest it.")
    DATASETS_VERIFIED = "Verified against their signed manifests before the server started: {datasets}."
    VERIFICATION_PENDING = "Each dataset is verified against its signed manifest before the server starts."
    DATASETS_READY = "Mounted read-only: {mounts}."
    NO_DATASETS = "No datasets requested."
    TOOL_APPROVED = "Tool {tool!r} is approved ({image})."
    WITHIN_CEILINGS = "Within the ceilings of DataPermit {permit!r}."
    ISOLATED = "Namespace {namespace} has its permit's network policies and quota ({found})."
    ISOLATION_NOT_CHECKED = "Checked when the server starts."
    NOT_ISOLATED = (
        "Namespace {namespace} lacks {missing}, which DataPermit {permit!r} puts in place; no server starts "
        "before its namespace is isolated. See the DataPermit's NamespaceReady condition.")
    STOPPED = "The server is stopped (spec.running is false); volumes are kept."
    STOPPED_IDLE = "Stopped after {minutes} idle minutes; volumes are kept. Set spec.running to true to start again."
    STOPPING = "The server is stopping."
    STARTING = "The server is starting on node {node}."
    WAITING_FOR_POD = "Waiting for the server's pod to be created."
    WAITING_FOR_VOLUMES = "Waiting for the volumes to be bound before the server can be scheduled."
    SERVER_READY = "The server answers at {url} on node {node}."
    SCHEDULED = "Scheduled on node {node}."
    NOT_SCHEDULED_STOPPED = "The server is stopped."
    BLOCKED = "The server cannot run: {detail}"
    EVENT_STARTED = "Server running on node {node}{gpus}: {url}"
    EVENT_STOPPED = "Server stopped: {why}."
    STOPPED_GPU_IDLE = (
        "Stopped: GPU idle: its GPUs stayed under {threshold}% utilisation for {minutes} minutes; volumes "
        "are kept. Set spec.running to true to start again.")
    EVENT_GPU_IDLE = ("GPU idle: its GPUs stayed under {threshold}% utilisation since {since} ({minutes} minutes): "
                      "stopping the server; volumes are kept.")
    EVENT_IDLE = "No activity for {minutes} minutes (last {last}): stopping the server; volumes are kept."


class DatasetMessage:
    """Status messages, written for the person running ``kubectl describe dataset``."""

    NO_INGEST_IMAGE = ("The operator has no ingest image (setting ingest_image / SPE_INGEST_IMAGE); "
                       "set it to images/ingest's digest and the ingest starts.")
    SOURCE_NAMESPACE = ("spec.source.claimNamespace is {namespace!r}, but the ingest Job runs in the "
                        "operator's namespace {operator!r} and a pod mounts only claims of its own namespace: "
                        "put the source claim in {operator!r}.")
    SECRET_NAMESPACE = ("spec.{field} names a Secret in {namespace!r}; the ingest Job mounts Secrets of the "
                        "operator's namespace {operator!r} only: put it there.")
    NO_STORAGE_CLASS = ("spec.storage.storageClassName is not set and the operator has no default_storage_class: "
                        "name an encrypted storage class ({classes}).")
    NOT_ENCRYPTED = ("Storage class {cls!r} is not one the operator knows to encrypt at rest ({classes}); "
                     "choose one of those.")
    UNSUPPORTED_OPTION = ("spec.anonymisation.options names {options}, which spe-ingest does not implement; "
                          "remove it (or de-identify those objects before the export).")
    SOURCE_MISSING = "Source claim {namespace}/{claim} does not exist yet; the ingest starts when it does."
    INGESTING = "Ingest of revision {revision} is running (Job {job}){progress}."
    SHARDS = "Ingest of revision {revision}: {done} of {total} shards done (Job {job}){progress}."
    READY = ("Revision {revision} ingested: {accepted} of {inputs} instances accepted ({efficiency}%), k={k} "
             "(threshold {threshold}); manifest {digest}.")
    QUARANTINED = ("Revision {revision} ingested, but no instance was accepted: {quarantined} are held in "
                   "quarantine for manual review; nothing is mounted.")
    REFUSED = ("Ingest of revision {revision} refused: k-anonymity {k} is below the threshold {threshold} "
               "over {qis} ({classes} classes too small); add patients, coarsen or drop quasi-identifiers, "
               "or lower spec.kAnonymity.threshold.")
    FAILED = "Ingest of revision {revision} failed (Job {job}): {detail}"
    NO_REPORT = ("Ingest Job {job} completed but left no readable report in its pod's termination message; "
                 "the dataset is not marked Ready.")


class DatasetReason:
    """Dataset condition and Event reasons."""

    PENDING = "Pending"
    INGESTING = "Ingesting"
    INGESTED = "Ingested"
    QUARANTINED = "Quarantined"
    K_REFUSED = "KAnonymityBelowThreshold"
    JOB_FAILED = "IngestFailed"
    INVALID = Reason.INVALID_SPEC
    NO_REPORT = "NoReport"
