"""The SPE resource models (group spe.ehds.io, version v1alpha1): the single source of truth.

Every component reads and writes the five kinds through these models; the CRDs in ``crds/``
are generated from them (``spe-operator crds``).
"""

from .common import (API_VERSION, GROUP, VERSION, Condition, ConditionStatus, CustomResource, ObjectMeta,
                     SecretKeyRef, Status)
from .conditions import get_condition, is_true, remove_condition, set_condition
from .datapermit import (IDENTITY_FINALIZER, KEEP_GROUP_ANNOTATION, PERMIT_NAME_MAX_LENGTH, Allocation, Ceilings, DataPermit, DataPermitPhase, DataPermitSpec,
                         DataPermitStatus, DisclosureThresholds, ExportPolicy, GpuAllocation, GpuCeiling, MemberRole,
                         NkDominance, PermitMember, RecordLevelOutputs, WorkspaceGpuHours, parse_permit_group,
                         permit_group, permit_namespace)
from .dataset import (DATASET_NAME_MAX_LENGTH, Anonymisation, AnonymisationOption, AnonymisationProfile, Dataset,
                      DatasetCounts, DatasetPhase, DatasetSource, DatasetSpec, DatasetStatus, DatasetStorage,
                      KAnonymity, Pseudonymisation)
from .outputreview import (CheckResult, ExportFile, FileCheck, OutputReview, OutputReviewPhase, OutputReviewSpec,
                           OutputReviewStatus, Vote, VoteDecision)
from .quantity import format_quantity, is_quantity, parse_quantity
from .reasons import ConditionType, Message, Reason
from .tool import Approval, DefaultResources, ScanSummary, Tool, ToolKind, ToolPhase, ToolSpec, ToolStatus
from .workspace import (WORKSPACE_NAME_MAX_LENGTH, GpuRequest, GpuTelemetryState, GpuUsage, Workspace, WorkspacePhase, WorkspaceResources,
                        WorkspaceSpec, WorkspaceStatus, WorkspaceStorage)

KINDS: tuple[type[CustomResource], ...] = (DataPermit, Dataset, Workspace, OutputReview, Tool)

__all__ = [name for name in dir() if not name.startswith("_")]
