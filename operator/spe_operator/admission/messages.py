"""The admission webhook's refusal messages, in one place.

Each names the field, the offending value and the fix. Fields are filled with ``str.format``.
"""

PERMIT_NOT_FOUND = (
    "spec.permit: DataPermit {permit!r} does not exist; create the permit first or name an "
    "existing one (kubectl get datapermits)")
WRONG_NAMESPACE = (
    "metadata.namespace: {namespace!r} is not the namespace of DataPermit {permit!r}; "
    "create the Workspace in namespace {expected!r}")
PERMIT_NOT_ACTIVE = (
    "spec.permit: DataPermit {permit!r} is {phase}, not Active ({detail}); a workspace can only "
    "be created or started under an active permit")
MEMBER_NOT_IN_PERMIT = (
    "spec.members: {subject!r} is not a member of DataPermit {permit!r}; add them to the permit's "
    "spec.members first or remove them from the Workspace")
DATASET_NOT_IN_PERMIT = (
    "spec.datasets: {dataset!r} is not granted by DataPermit {permit!r} (it grants: {granted}); "
    "remove it from the Workspace or have it added to the permit")
TOOL_NOT_FOUND = (
    "spec.tool: Tool {tool!r} does not exist; choose an approved Tool from the catalogue "
    "(kubectl get tools): {available}")
TOOL_NOT_APPROVED = (
    "spec.tool: Tool {tool!r} is {phase}, not Approved ({detail}); choose an approved Tool "
    "(kubectl get tools)")
TOOL_NOT_GPU_CAPABLE = (
    "spec.resources.gpus: Tool {tool!r} is not GPU-capable (spec.gpuCapable is false); choose a "
    "GPU-capable tool or remove spec.resources.gpus")
GPU_MODEL_NOT_PERMITTED = (
    "spec.resources.gpus.model: {model!r} is not permitted by DataPermit {permit!r} "
    "(permitted: {permitted}); choose a permitted model")
CEILING_EXCEEDED = (
    "spec.resources.{what}: {requested} exceeds what DataPermit {permit!r} has left: ceiling "
    "{ceiling}, held by its other running workspaces {held}{holders}, left {left}; request at "
    "most {left} or stop another workspace")
GPU_CEILING_EXCEEDED = (
    "spec.resources.gpus.count: {requested} x {model} exceeds what DataPermit {permit!r} has left: "
    "ceiling {ceiling}, held by its other running workspaces {held}{holders}, left {left}; request "
    "at most {left} or stop another workspace")
STORAGE_CEILING_EXCEEDED = (
    "spec.storage.size: {requested} (x2: home and outputs) exceeds what DataPermit {permit!r} has "
    "left for storage: ceiling {ceiling}, held by its other workspaces {held}, left {left}; "
    "request at most {per_volume} per volume")
WORKSPACE_LIMIT_REACHED = (
    "metadata.name: DataPermit {permit!r} already has {count} workspaces, its ceiling "
    "(spec.ceilings.maxWorkspaces) is {limit}; delete an unused workspace first")
NOT_EGRESS_GATEWAY = (
    "OutputReview: created by {user!r}, but only the egress gateway ({gateway!r}) may create "
    "export requests; use `spe-export request` inside the workspace")
OUTPUT_WORKSPACE_NOT_FOUND = (
    "spec.workspace: Workspace {workspace!r} does not exist in namespace {namespace!r}; name the "
    "workspace the files come from")
REQUESTER_NOT_MEMBER = (
    "spec.requester: {requester!r} is not a member of Workspace {workspace!r}; only its members "
    "may export from it")
REQUESTER_NOT_RESEARCHER = (
    "spec.requester: {requester!r} is {role} on DataPermit {permit!r}; only its researchers may "
    "export (a data-holder delegate may inspect, not export)")
REQUESTER_NOT_IN_PERMIT = (
    "spec.requester: {requester!r} is no longer a member of DataPermit {permit!r}; remove them from "
    "Workspace {workspace!r}'s spec.members")
EXPORT_PERMIT_NOT_ACTIVE = (
    "spec.workspace: the permit {permit!r} of Workspace {workspace!r} is {phase}, not Active; "
    "new exports are refused")
DATASET_NOT_FOUND = (
    "spec.datasets: Dataset {dataset!r} does not exist; create it first (kubectl get datasets) "
    "or remove it from the permit")
PERMIT_ID_TAKEN = (
    "spec.permitId: {permit_id!r} is already used by DataPermit {other!r}; a permit id names one "
    "DataPermit only (update that one instead)")
