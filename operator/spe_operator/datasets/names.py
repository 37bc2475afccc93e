"""Names, labels, paths and messages of a Dataset's children, in one place.

Children live in the operator's namespace. A Dataset's name is a DNS-1123 label of at most
``DATASET_NAME_MAX_LENGTH`` characters; its Jobs are ``dataset-<name>-r<revision>-ingest`` (and
``-shards``), and the Job controller adds ``batch.kubernetes.io/job-name`` labels (63 characters)
to their pods, so the revision suffix is kept short.
"""

from __future__ import annotations

from spe_api.datasetvolume import (ANNOTATION_MANIFEST_DIGEST, LABEL_DATASET, LABEL_PSEUDONYMS, LABEL_REVISION,
                                   LABEL_STATE, PSEUDONYMS_KEY, PSEUDONYMS_NAMESPACE, STATE_FAILED, STATE_INGESTING,
                                   STATE_READY, dataset_claim_name, pseudonyms_secret_name)

COMPONENT_INGEST = "dataset-ingest"        # the ingest Jobs and their pods
COMPONENT_VOLUME = "dataset-volume"        # the revision's claim
COMPONENT_PSEUDONYMS = "dataset-pseudonyms"

LABEL_JOB_ROLE = "spe.ehds.io/ingest-role"  # shards | final
ROLE_SHARDS = "shards"
ROLE_FINAL = "final"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

# The StorageClass of an encrypted CSI driver reads the per-dataset key's Secret from these claim
# annotations through the external-provisioner's templates, e.g.
#   csi.storage.k8s.io/node-stage-secret-name: ${pvc.annotations['spe.ehds.io/encryption-key-secret']}
#   csi.storage.k8s.io/node-stage-secret-namespace: ${pvc.annotations['spe.ehds.io/encryption-key-namespace']}
ANNOTATION_KEY_SECRET = "spe.ehds.io/encryption-key-secret"
ANNOTATION_KEY_NAMESPACE = "spe.ehds.io/encryption-key-namespace"
ANNOTATION_KEY_KEY = "spe.ehds.io/encryption-key-key"

CONTAINER_INGEST = "ingest"
CONTAINER_PSEUDONYMS = "pseudonyms"
CONTAINER_VERIFY = "verify"
SOURCE_VOLUME, DATASET_VOLUME, TMP_VOLUME = "source", "dataset", "tmp"
PSEUDONYM_KEY_VOLUME, SIGNING_KEY_VOLUME = "pseudonym-key", "signing-key"
SOURCE_DIR, DATASET_DIR, TMP_DIR = "/source", "/dataset", "/tmp"
PSEUDONYM_KEY_DIR, SIGNING_KEY_DIR = "/run/secrets/spe-ingest/pseudonym", "/run/secrets/spe-ingest/signing"
KEY_FILE = "key"
INGEST_UID = 65532  # the ingest image's user (images/ingest/Dockerfile)
TERMINATION_LOG = "/dev/termination-log"

EXIT_USAGE, EXIT_REFUSED = 2, 3
# Options of the model that spe-ingest does not implement: refused before any Job runs (the
# ingest would refuse them too, as a usage error).
UNSUPPORTED_OPTIONS = frozenset({"clean-recognizable-visual-features"})  # spe-ingest run's exit codes that no retry can change

__all__ = ["ANNOTATION_MANIFEST_DIGEST", "LABEL_DATASET", "LABEL_PSEUDONYMS", "LABEL_REVISION", "LABEL_STATE",
           "PSEUDONYMS_KEY", "PSEUDONYMS_NAMESPACE", "STATE_FAILED", "STATE_INGESTING", "STATE_READY",
           "dataset_claim_name", "pseudonyms_secret_name"]


def job_name(dataset: str, revision: int, role: str) -> str:
    return f"{dataset_claim_name(dataset, revision)}-{'ingest' if role == ROLE_FINAL else 'shards'}"
