"""Names, labels, annotations and paths of a Workspace's children, in one place.

A Workspace's name is at most ``WORKSPACE_NAME_MAX_LENGTH`` (40) characters (see
``spe_api.workspace``): the StatefulSet carries it verbatim and its pod is ``<name>-0``; the
pod's ``controller-revision-hash`` label is ``<name>-<10 characters>`` and must fit a
63-character label value, and the volume claims are ``<name>-home`` / ``<name>-outputs``.
"""

from __future__ import annotations

from spe_operator.children import LABEL_COMPONENT, LABEL_WORKSPACE

COMPONENT_NOTEBOOK = "notebook"          # the pod, its StatefulSet and Service
COMPONENT_VOLUME = "workspace-volume"    # home and outputs claims
COMPONENT_DATASET_CLAIM = "dataset-claim"  # per-namespace read-only dataset PV + PVC

LABEL_DATASET = "spe.ehds.io/dataset"
LABEL_VOLUME = "spe.ehds.io/volume"      # home | outputs

# Set by the hub whenever the researcher's server shows activity (RFC 3339, UTC).
ANNOTATION_LAST_ACTIVITY = "spe.ehds.io/last-activity"
# Set by the operator together with spec.running=false when it stops a server itself.
ANNOTATION_STOP_REASON = "spe.ehds.io/stop-reason"
ANNOTATION_TOOL = "spe.ehds.io/tool"
# On the server's pod template: the site's dataset signing public key (PEM), handed to the
# verifying init containers through the downward API (no object of its own to keep in step).
ANNOTATION_DATASET_PUBLIC_KEY = "spe.ehds.io/dataset-public-key"

CONTAINER_NAME = "notebook"
PORT_NAME = "http"

HOME_VOLUME = "home"
OUTPUTS_VOLUME = "outputs"
TMP_VOLUME = "tmp"
SHM_VOLUME = "dshm"
HUB_SECRET_VOLUME = "hub-credentials"
DATASET_KEY_VOLUME = "dataset-public-key"
VERIFY_CONTAINER_PREFIX = "verify-"  # + dataset name (<= 40): one init container per dataset

DATA_ROOT = "/data"
TMP_DIR = "/tmp"
SHM_DIR = "/dev/shm"
HUB_SECRET_DIR = "/run/secrets/spe-hub"
DATASET_KEY_DIR = "/run/spe/dataset-key"
DATASET_KEY_FILE = "signing.pub"
VERIFY_DATASET_DIR = "/dataset"  # the whole dataset volume, in its verifying init container only

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def statefulset_name(workspace: str) -> str:
    return workspace


def service_name(workspace: str) -> str:
    return workspace


def pod_name(workspace: str) -> str:
    return f"{statefulset_name(workspace)}-0"


def home_claim_name(workspace: str) -> str:
    return f"{workspace}-home"


def outputs_claim_name(workspace: str) -> str:
    return f"{workspace}-outputs"


def hub_secret_name(workspace: str) -> str:
    """The Secret the hub's spawner writes the server's hub credentials into (optional)."""
    return f"{workspace}-hub"


# Derived names never collide: a dataset's claim and volume use '.' as separator, which no
# workspace, permit or dataset name contains (their names are DNS labels, see spe_api), so
# "ds.<dataset>.r<n>" is never "<workspace>-home", and "ds.<namespace>.<dataset>.r<n>" names
# exactly one (namespace, dataset, revision) ("ds-spe-a-b-c" would be both (spe-a-b, c) and
# (spe-a, b-c)).


def dataset_claim_name(dataset: str, revision: int) -> str:
    """The read-only claim of one ingest revision of a dataset in a permit's namespace (a
    dataset name is <= 40). One pair per revision: a volume's source is immutable, so a new
    revision gets new copies, and a running server keeps the revision it started on."""
    return f"ds.{dataset}.r{revision}"


def dataset_volume_name(namespace: str, dataset: str, revision: int) -> str:
    """The read-only PersistentVolume pre-bound to that claim (cluster-scoped, so it names the
    namespace; 3 + 63 + 1 + 40 + 2 + 10 characters fit a PersistentVolume's 253)."""
    return f"ds.{namespace}.{dataset}.r{revision}"


def revision_of_dataset_claim(dataset: str, claim: str) -> int | None:
    """The revision of ``dataset`` a permit namespace's claim holds (None: not one of its)."""
    prefix = f"ds.{dataset}.r"
    tail = claim[len(prefix):] if claim.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def dataset_mount_path(dataset: str) -> str:
    return f"{DATA_ROOT}/{dataset}"


def dataset_volume_in_pod(dataset: str) -> str:
    return f"ds-{dataset}"


def verify_container_name(dataset: str) -> str:
    return f"{VERIFY_CONTAINER_PREFIX}{dataset}"


def dataset_of_verify_container(container: str) -> str | None:
    return container[len(VERIFY_CONTAINER_PREFIX):] if container.startswith(VERIFY_CONTAINER_PREFIX) else None


def selector_labels(workspace: str) -> dict[str, str]:
    """What the StatefulSet selects its pod by (immutable once created)."""
    return {LABEL_WORKSPACE: workspace, LABEL_COMPONENT: COMPONENT_NOTEBOOK}


def server_url(workspace: str, namespace: str, port: int) -> str:
    return f"http://{service_name(workspace)}.{namespace}.svc:{port}"
