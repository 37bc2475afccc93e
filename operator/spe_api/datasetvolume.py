"""How the operator marks the volumes its Dataset reconciler produced: the one contract between
the Dataset reconciler (which creates them) and the Workspace reconciler (which mounts them).

Each ingest of a Dataset revision writes into its own PersistentVolumeClaim in the operator's
namespace, ``dataset-<name>-r<revision>`` (the revision is the Dataset's ``metadata.generation``
when the ingest started), created by the Dataset reconciler with an ownerReference to the
Dataset (its uid) and the labels below. Only when that ingest finished, its manifest verified
and its k threshold met does the reconciler set :data:`LABEL_STATE` to :data:`STATE_READY`
(and the manifest digest annotation) on the claim. The Workspace reconciler mounts the claim's
bound PersistentVolume found this way, newest ready revision first, and never a volume named
in ``Dataset.status`` (whoever can write status must not choose what tenants mount).

Layout of the volume (``spe-ingest run``'s DST): ``data/`` (the de-identified files: the only
part mounted into workspaces), ``quarantine/``, ``manifest.json`` (signed), ``report.json``
and ``.spe-ingest/`` (the journal).
"""

from __future__ import annotations

LABEL_DATASET = "spe.ehds.io/dataset"
LABEL_REVISION = "spe.ehds.io/dataset-revision"
LABEL_STATE = "spe.ehds.io/dataset-state"
STATE_INGESTING = "ingesting"
STATE_READY = "ready"
STATE_FAILED = "failed"
ANNOTATION_MANIFEST_DIGEST = "spe.ehds.io/manifest-digest"
DATA_SUBPATH = "data"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"


def dataset_claim_name(dataset: str, revision: int) -> str:
    """The claim one ingest of ``dataset`` at ``revision`` writes into."""
    return f"dataset-{dataset}-r{revision}"


# The dataset's pseudonyms for the egress gateway's identifier check: a Secret per Dataset in a
# namespace of their own (so the gateway's read access covers these and nothing else), written
# once per ready revision by the ingest's publication step, never the identifiers themselves:
# one lower-case hex SHA-256 of each pseudonym per line, sorted, under PSEUDONYMS_KEY.
PSEUDONYMS_NAMESPACE = "spe-pseudonyms"
PSEUDONYMS_KEY = "pseudonyms.sha256"
LABEL_PSEUDONYMS = "spe.ehds.io/pseudonyms"


def pseudonyms_secret_name(dataset: str) -> str:
    """The Secret in :data:`PSEUDONYMS_NAMESPACE` that holds ``dataset``'s hashed pseudonyms."""
    return f"dataset-{dataset}"
