"""rancher/local-path-provisioner (built from its Go module by
scripts/deps.d/local-path-provisioner.sh) as a host process against a spe-dev cluster, serving an
encrypted storage class: its helper pods (mkdir/rm of each volume's directory) run on the real
node from the ingest image, which has a shell; the class binds at first use
(WaitForFirstConsumer) and makes hostPath volumes below a directory the kernel encrypts
(``fscrypt.encrypted_directory``), so the class the operator's settings mark encrypted really is.
Used by the Dataset tests and ``spe-dev demo``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from .servers import repo_root

BINARY = repo_root() / ".cache" / "local-path-provisioner" / "current" / "local-path-provisioner"
NAMESPACE = "spe-local-path"
PROVISIONER = "rancher.io/local-path"
ENCRYPTION = "fscrypt (AES-256-XTS) on a loop ext4, one key for the class"


def objects(root: Path, helper_image: str, class_name: str, *, labels: dict[str, str] | None = None,
            default_class: bool = False) -> list[dict[str, Any]]:
    """The provisioner's namespace, its ConfigMap (where volumes go, the helper pod) and class (pure)."""
    labels = labels or {}
    helper_pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
        "spec": {"automountServiceAccountToken": False, "enableServiceLinks": False,
                 "containers": [{"name": "helper-pod", "image": helper_image, "imagePullPolicy": "Never",
                                 # mkdir/rm of a directory on the node: root in the helper pod only.
                                 "securityContext": {"runAsUser": 0, "runAsGroup": 0},
                                 "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]},
    }
    annotations = {"spe.ehds.io/encrypted": ENCRYPTION}
    if default_class:
        annotations["storageclass.kubernetes.io/is-default-class"] = "true"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "local-path-config", "namespace": NAMESPACE},
         "data": {
             "config.json": json.dumps({"nodePathMap": [
                 {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(root)]}]}),
             "setup": "#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"$VOL_DIR\"\n",
             "teardown": "#!/bin/sh\nset -eu\nrm -rf \"$VOL_DIR\"\n",
             "helperPod.yaml": yaml.safe_dump(helper_pod),
         }},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": class_name, "labels": labels, "annotations": annotations},
         "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
         "volumeBindingMode": "WaitForFirstConsumer"},
    ]


def binder_pod(claim: str, namespace: str, image: str) -> dict[str, Any]:
    """A pod that uses ``claim`` once and exits (pure): the class binds at first use, so a claim
    filled from this machine needs a consumer before it has a volume directory."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bind-{claim}"[:60], "namespace": namespace},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "bind", "image": image, "imagePullPolicy": "Never",
                                     "command": ["python3", "-c", "pass"],
                                     "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]},
                                                         "seccompProfile": {"type": "RuntimeDefault"}},
                                     "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                                     "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                     "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}}


def start(kubeconfig: str, helper_image: str, log_path: Path) -> subprocess.Popen:
    """The provisioner process (apply ``objects`` first); stop it with ``terminate``."""
    if not BINARY.exists():
        raise FileNotFoundError(f"{BINARY} is missing: run scripts/deps.d/local-path-provisioner.sh")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(BINARY), "--debug", "start", "--kubeconfig", kubeconfig, "--namespace", NAMESPACE,
             "--service-account-name", "default", "--helper-image", helper_image,
             "--provisioning-retry-count", "30"],
            stdout=log, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError(f"local-path-provisioner exited with {proc.returncode}: see {log_path}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
