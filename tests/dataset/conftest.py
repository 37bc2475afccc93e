"""Fixtures of the Dataset tests on spe-dev's real node.

* ``local_path``: rancher/local-path-provisioner against the test cluster
  (devtools/spe_dev/localpath.py), its class ``spe-local-path`` on a directory the kernel
  encrypts (devtools/spe_dev/fscrypt.py): the class the operator's settings mark encrypted
  really is.
* ``dataset_operator``: the operator with ingest settings (the ingest image by digest, the real
  node's selector and toleration, the local class marked encrypted); the session operator is
  paused meanwhile, so one operator runs at a time.
* ``DatasetEnv``: source claims filled with DICOM, the keys' Secrets, Datasets, and waits.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from spe_dev import localpath
from spe_dev.api import HttpError
from spe_dev.settings import REAL_NODE_NAME
from tests.fixtures import waiting
from tests.fixtures.operator import _SESSION, TEST_STORAGE_CLASS, running_operator, test_settings
from tests.node.conftest import TOLERATION, node_env, node_namespace, real_node  # noqa: F401 - fixtures

from spe_dev.fscrypt import encrypted_directory
from spe_dev.sourcedata import SourceSpec, signing_key_pem, write_source

LOCAL_PATH_CLASS = "spe-local-path"
TEST_LABEL = {"spe.ehds.io/test": "true"}
OPERATOR_NS = "spe-system"
DATASETS = "/apis/spe.ehds.io/v1alpha1/datasets"
INGEST = "ingest"
LOCAL_PATH_DISK: list[Path] = []  # the encrypted file system's backing image, while it is mounted


# The suite's one wait (tests/fixtures/waiting.py), polling every half second like ingest Jobs need.
wait_for = functools.partial(waiting.wait_for, interval=0.5)


@pytest.fixture(scope="session")
def local_path(cluster, real_node) -> Iterator[str]:  # noqa: F811
    """rancher/local-path-provisioner serving ``spe-local-path``; yields the class name."""
    stack = ExitStack()
    root, image = stack.enter_context(encrypted_directory(cluster.home / "local-path"))
    LOCAL_PATH_DISK.append(image)
    text = yaml.safe_dump_all(localpath.objects(root, real_node.image(INGEST), LOCAL_PATH_CLASS, labels=TEST_LABEL))
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text, check=True)
    try:
        proc = localpath.start(cluster.kubeconfig, real_node.image(INGEST), cluster.home / "local-path-provisioner.log")
    except (FileNotFoundError, RuntimeError) as e:
        stack.close()
        pytest.fail(f"{e} (make test installs it)", pytrace=False)
    try:
        yield LOCAL_PATH_CLASS
    finally:
        localpath.stop(proc)
        LOCAL_PATH_DISK.clear()
        stack.close()


@pytest.fixture(scope="module")
def dataset_operator(cluster, real_node, spe_crds, storage_provisioner, local_path, operator_kubeconfig,  # noqa: F811
                     tmp_path_factory):
    """The operator with its ingest settings, alone for the module (the session one paused)."""
    paused = [s for s in _SESSION if s.running]
    for session in paused:
        session.stop()
    settings = test_settings(
        kubeconfig=operator_kubeconfig, ingest_image=real_node.image(INGEST), dataset_reconciler=True,
        encrypted_storage_classes=[TEST_STORAGE_CLASS, LOCAL_PATH_CLASS], default_storage_class=LOCAL_PATH_CLASS,
        ingest_node_selector={"kubernetes.io/hostname": REAL_NODE_NAME}, ingest_tolerations=[TOLERATION],
        ingest_workers=1, ingest_cpu="1", ingest_memory="1Gi", dataset_progress_interval=1.0,
        audit_log_path=str(tmp_path_factory.mktemp("dataset-audit") / "audit.jsonl"))
    try:
        with running_operator(settings):
            yield settings
    finally:
        for session in paused:
            session.start()


class DatasetEnv:
    """Source claims, keys and Datasets of one test module; everything it made is deleted."""

    def __init__(self, cluster, real_node, settings):  # noqa: F811
        self.cluster, self.node, self.settings = cluster, real_node, settings
        self.api = cluster.api()
        self.made: list[str] = []
        self.claims: list[str] = []
        self.secrets: list[str] = []
        self.signing_pem = signing_key_pem()

    # --- keys ------------------------------------------------------------------------------------

    def secret(self, name: str, data: dict[str, bytes]) -> str:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": OPERATOR_NS},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                             input=json.dumps(body), check=True)
        self.secrets.append(name)
        return name

    def keys(self, suffix: str) -> tuple[str, str]:
        pkey = self.secret(f"pkey-{suffix}", {"key": secrets.token_bytes(48)})
        skey = self.secret(f"sign-{suffix}", {"key": self.signing_pem})
        return pkey, skey

    # --- source data -----------------------------------------------------------------------------

    def source_claim(self, name: str, spec: SourceSpec, *, path: str = "/", storage_class: str = LOCAL_PATH_CLASS,
                     uid_root: int = 1) -> list[str]:
        """A claim in the operator's namespace holding DICOM under ``path``; returns the planted names."""
        self.api.create(f"/api/v1/namespaces/{OPERATOR_NS}/persistentvolumeclaims", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": OPERATOR_NS, "labels": {"spe.ehds.io/test": "true"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Gi"}}}})
        self.claims.append(name)
        claim_path = f"/api/v1/namespaces/{OPERATOR_NS}/persistentvolumeclaims/{name}"
        binder = None
        if storage_class == LOCAL_PATH_CLASS:  # bound at first use: a pod on the node uses it once
            pod = localpath.binder_pod(name, OPERATOR_NS, self.node.image(INGEST))
            pod["spec"] = self.node.pin(pod["spec"])
            binder = pod["metadata"]["name"]
            self.api.create(f"/api/v1/namespaces/{OPERATOR_NS}/pods", pod)
        claim = wait_for(f"claim {name} Bound", lambda: (lambda c: c if c and c.get("status", {}).get(
            "phase") == "Bound" else None)(self.api.get_or_none(claim_path)), timeout=180)
        if binder:
            self.api.call("DELETE", f"/api/v1/namespaces/{OPERATOR_NS}/pods/{binder}")
        pv = self.api.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
        host = Path((pv["spec"].get("hostPath") or pv["spec"].get("local"))["path"])
        target = host / path.lstrip("/")
        wait_for(f"volume directory {host}", host.is_dir, timeout=60)
        target.mkdir(parents=True, exist_ok=True)
        names = write_source(target, spec, uid_root=uid_root)
        for p in [host, *host.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        return names

    # --- Datasets --------------------------------------------------------------------------------

    def dataset_body(self, name: str, claim: str, keys: tuple[str, str], **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name},
                "spec": {"source": {"claimName": claim},
                         "pseudonymisation": {"keySecret": {"name": keys[0]}, "site": "testsite"},
                         "kAnonymity": {"threshold": 2},
                         "storage": {"size": "1Gi", "storageClassName": LOCAL_PATH_CLASS},
                         "signingKeySecret": {"name": keys[1]}}}
        for key, value in spec.items():
            body["spec"][key] = value
        return body

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        self.made.append(body["metadata"]["name"])
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=data-holder",
                             "-f", "-", input=json.dumps(body), check=True)
        return self.get(body["metadata"]["name"])

    def get(self, name: str) -> dict[str, Any] | None:
        return self.api.get_or_none(f"{DATASETS}/{name}")

    def wait_phase(self, name: str, phases: tuple[str, ...], timeout: float = 420) -> dict[str, Any]:
        def probe():
            ds = self.get(name)
            return ds if ds and (ds.get("status") or {}).get("phase") in phases and \
                (ds["status"].get("observedGeneration") == ds["metadata"]["generation"]) else None
        try:
            return wait_for(f"dataset {name} in {phases}", probe, timeout=timeout)
        except (AssertionError, pytest.fail.Exception):
            print(self.cluster.kubectl("get", "jobs,pods,pvc", "-n", OPERATOR_NS, "-o", "wide").stdout)
            print(json.dumps((self.get(name) or {}).get("status"), indent=1))
            raise

    def pods(self, name: str) -> list[dict[str, Any]]:
        return self.api.get(f"/api/v1/namespaces/{OPERATOR_NS}/pods?labelSelector=spe.ehds.io/dataset={name}")["items"]

    def claim(self, name: str) -> dict[str, Any] | None:
        return self.api.get_or_none(f"/api/v1/namespaces/{OPERATOR_NS}/persistentvolumeclaims/{name}")

    def cleanup(self) -> None:
        for name in self.made:
            self._delete(f"{DATASETS}/{name}")
        for name in self.claims:
            self._delete(f"/api/v1/namespaces/{OPERATOR_NS}/persistentvolumeclaims/{name}")
        for name in self.secrets:
            self._delete(f"/api/v1/namespaces/{OPERATOR_NS}/secrets/{name}")

    def _delete(self, path: str) -> None:
        try:
            self.api.call("DELETE", path)
        except HttpError as err:
            if err.status != 404:
                raise


@pytest.fixture(scope="module")
def dataset_env(cluster, real_node, dataset_operator) -> Iterator[DatasetEnv]:  # noqa: F811
    env = DatasetEnv(cluster, real_node, dataset_operator)
    yield env
    env.cleanup()
