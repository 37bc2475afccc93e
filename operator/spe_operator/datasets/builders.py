"""Pure builders of a Dataset revision's children: its claim and its ingest Jobs.

No I/O, no clock: plain inputs in, manifests out (unit-tested without a cluster).

The ingest pod gets exactly what ``spe-ingest run`` needs and nothing else: the source claim
read-only, the revision's claim, the pseudonym key and the signing key (each one key of its
Secret, mode 0440 for the pod's group), a writable ``/tmp``; no service-account token, no
service links, non-root, read-only root filesystem, every capability dropped. It reports
through its container's termination message (``--summary-file /dev/termination-log``: the
kubelet keeps it in the pod's status, so the Job needs no API access to tell the operator its
counts) and its log (``--progress-every``: the operator reads the last line while it runs).
"""

from __future__ import annotations

from typing import Any

from spe_api import Dataset

from ..children import adopt
from . import names as n

GROUP_VERSION = "spe.ehds.io/v1alpha1"


def dataset_owner(dataset: Dataset) -> dict[str, Any]:
    """The owner form of a Dataset for :func:`spe_operator.children.adopt`."""
    return {"apiVersion": GROUP_VERSION, "kind": "Dataset",
            "metadata": {"name": dataset.name, "uid": dataset.metadata.uid}}


def revision_labels(dataset: str, revision: int) -> dict[str, str]:
    return {n.LABEL_DATASET: dataset, n.LABEL_REVISION: str(revision)}


def build_claim(dataset: Dataset, revision: int, storage_class: str, namespace: str) -> dict[str, Any]:
    """The revision's claim (``datasetvolume`` contract), in the encrypted ``storage_class``; the
    dataset's own encryption key, when it names one, is handed to the CSI driver through the
    claim's annotations (see ``names.ANNOTATION_KEY_SECRET``)."""
    annotations: dict[str, str] = {}
    key = dataset.spec.storage.encryption_key_secret
    if key is not None:
        annotations = {n.ANNOTATION_KEY_SECRET: key.name, n.ANNOTATION_KEY_NAMESPACE: key.namespace or namespace,
                       n.ANNOTATION_KEY_KEY: key.key}
    claim = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": n.dataset_claim_name(dataset.name, revision), "namespace": namespace,
                     "labels": {**revision_labels(dataset.name, revision), n.LABEL_STATE: n.STATE_INGESTING},
                     **({"annotations": annotations} if annotations else {})},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "volumeMode": "Filesystem",
                 "resources": {"requests": {"storage": dataset.spec.storage.size}}},
    }
    return adopt(claim, dataset_owner(dataset), component=n.COMPONENT_VOLUME)


def ingest_arguments(dataset: Dataset, *, workers: int, shards: int = 0) -> list[str]:
    """``spe-ingest run``'s arguments from every field of the Dataset's spec that it uses."""
    spec = dataset.spec
    anon, pseudo, k = spec.anonymisation, spec.pseudonymisation, spec.k_anonymity
    source = n.SOURCE_DIR + ("" if spec.source.path == "/" else spec.source.path.rstrip("/"))
    args = ["spe-ingest", "run", source, n.DATASET_DIR,
            "--key-file", f"{n.PSEUDONYM_KEY_DIR}/{n.KEY_FILE}",
            "--site", pseudo.site,
            # Without a project the dataset is its own pseudonym domain (patients are not linkable
            # across datasets unless the data holder says so by naming a common project).
            "--project", pseudo.project or dataset.name,
            "--profile", anon.profile.value]
    for option in anon.options:
        args += ["--option", option.value]
    args += ["--date-shift-max-days", str(anon.date_shift_max_days),
             "--screenshots", "drop" if anon.drop_screenshots else "quarantine",
             "--secondary-captures", "quarantine" if anon.quarantine_secondary_captures else "drop",
             "--k-threshold", str(k.threshold)]
    for keyword in k.quasi_identifiers:
        args += ["--quasi-identifier", keyword]
    args += ["--workers", str(workers), "--summary-file", n.TERMINATION_LOG, "--progress-every", "2"]
    if shards:
        args += ["--shard-count", str(shards)]  # the index: $JOB_COMPLETION_INDEX
    else:
        args += ["--signing-key", f"{n.SIGNING_KEY_DIR}/{n.KEY_FILE}"]
    return args


def _secret_volume(volume: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440,
                                       "items": [{"key": key, "path": n.KEY_FILE}]}}


def _security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": n.INGEST_UID, "runAsGroup": n.INGEST_UID,
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def build_ingest_job(dataset: Dataset, revision: int, *, role: str, image: str, namespace: str,
                     shards: int = 1, workers: int = 2, cpu: str = "2", memory: str = "2Gi",
                     backoff_limit: int = 3, node_selector: dict[str, str] | None = None,
                     tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ingest Job of one revision.

    ``role`` ``final``: one pod; its init container ``ingest`` runs the whole ingest (or, after
    the shards, merges them: the same arguments resume from the shards' journals, compute k over
    the merged set and sign one manifest), its init container ``verify`` checks every file
    against the signed manifest, then its container ``pseudonyms`` prints the hashed
    pseudonyms for the operator to publish (it reads them from the log). ``role`` ``shards``: an
    Indexed Job of ``shards`` pods, each de-identifying its share (``--shard-count``).
    """
    spec = dataset.spec
    claim = n.dataset_claim_name(dataset.name, revision)
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
    mounts = [{"name": n.SOURCE_VOLUME, "mountPath": n.SOURCE_DIR, "readOnly": True},
              {"name": n.DATASET_VOLUME, "mountPath": n.DATASET_DIR},
              {"name": n.TMP_VOLUME, "mountPath": n.TMP_DIR},
              {"name": n.PSEUDONYM_KEY_VOLUME, "mountPath": n.PSEUDONYM_KEY_DIR, "readOnly": True}]
    volumes = [{"name": n.SOURCE_VOLUME, "persistentVolumeClaim": {"claimName": spec.source.claim_name,
                                                                 "readOnly": True}},
               {"name": n.DATASET_VOLUME, "persistentVolumeClaim": {"claimName": claim}},
               {"name": n.TMP_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}},
               _secret_volume(n.PSEUDONYM_KEY_VOLUME, spec.pseudonymisation.key_secret.name,
                              spec.pseudonymisation.key_secret.key)]
    if role == n.ROLE_FINAL:
        mounts.append({"name": n.SIGNING_KEY_VOLUME, "mountPath": n.SIGNING_KEY_DIR, "readOnly": True})
        volumes.append(_secret_volume(n.SIGNING_KEY_VOLUME, spec.signing_key_secret.name, spec.signing_key_secret.key))
    ingest = {
        "name": n.CONTAINER_INGEST, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ingest_arguments(dataset, workers=workers, shards=shards if role == n.ROLE_SHARDS else 0),
        "resources": resources, "securityContext": _security_context(), "volumeMounts": mounts,
        "terminationMessagePath": n.TERMINATION_LOG, "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if role == n.ROLE_FINAL:
        small = {"cpu": "100m", "memory": "256Mi"}
        publish = {
            "name": n.CONTAINER_PSEUDONYMS, "image": image, "imagePullPolicy": "IfNotPresent",
            "command": ["spe-ingest", "pseudonyms", n.DATASET_DIR],
            "resources": {"requests": small, "limits": small}, "securityContext": _security_context(),
            "volumeMounts": [{"name": n.DATASET_VOLUME, "mountPath": n.DATASET_DIR, "readOnly": True}],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        # Checked before the revision may become ready: every file against the signed manifest.
        verify = {**publish, "name": n.CONTAINER_VERIFY, "command": ["spe-ingest", "verify", n.DATASET_DIR]}
        pod_containers = {"initContainers": [ingest, verify], "containers": [publish]}
    else:
        pod_containers = {"containers": [ingest]}
    labels = {**revision_labels(dataset.name, revision), n.LABEL_JOB_ROLE: role}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 10,
        "securityContext": {"runAsNonRoot": True, "runAsUser": n.INGEST_UID, "runAsGroup": n.INGEST_UID,
                            "fsGroup": n.INGEST_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        **pod_containers, "volumes": volumes,
    }
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        pod_spec["tolerations"] = [dict(t) for t in tolerations]
    job_spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        # A refusal (k below the threshold) or a usage error gives the same answer on every try:
        # fail the Job at once. A pod deleted or evicted mid-run is retried without counting.
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": n.CONTAINER_INGEST, "operator": "In",
                                                  "values": [n.EXIT_USAGE, n.EXIT_REFUSED]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]},
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if role == n.ROLE_SHARDS:
        job_spec.update({"completionMode": "Indexed", "completions": shards, "parallelism": shards})
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": n.job_name(dataset.name, revision, role), "namespace": namespace,
                        "labels": labels},
           "spec": job_spec}
    return adopt(job, dataset_owner(dataset), component=n.COMPONENT_INGEST)


def build_pseudonyms_secret(dataset: Dataset, revision: int, hashes: list[str], namespace: str) -> dict[str, Any]:
    """The Secret the egress gateway reads the dataset's hashed pseudonyms from (datasetvolume)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": n.pseudonyms_secret_name(dataset.name), "namespace": namespace,
                           "labels": {n.LABEL_PSEUDONYMS: "true", **revision_labels(dataset.name, revision)}},
              "stringData": {n.PSEUDONYMS_KEY: "".join(h + "\n" for h in sorted(set(hashes)))}}
    return adopt(secret, dataset_owner(dataset), component=n.COMPONENT_PSEUDONYMS)
