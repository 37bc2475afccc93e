"""Fixtures of the workspace tests on the real control plane."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from spe_dev.api import HttpError

from tests.fixtures.datasetvolumes import OPERATOR_NAMESPACE, ingest_claim
from tests.fixtures.waiting import wait_for

from . import factories as f
from .helpers import Kube



@pytest.fixture(scope="session")
def kube(cluster) -> Kube:
    return Kube(cluster.api())


@pytest.fixture(scope="session")
def suffix() -> str:
    """Cluster-scoped objects are shared by every session on the cluster: names get a suffix."""
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def tool_name(spe_crds, kube: Kube, suffix: str) -> Iterator[str]:
    body = f.tool(f"jupyterlab-{suffix}")
    kube.create(body)
    yield body["metadata"]["name"]
    kube.delete_quietly(body)


@pytest.fixture(scope="session")
def dataset_name(spe_crds, operator_kubeconfig, kube: Kube, suffix: str, tmp_path_factory) -> Iterator[str]:
    """A Ready dataset whose data live on a hostPath PersistentVolume bound to its ingest claim in
    the operator's namespace, marked as the Dataset reconciler marks it (datasetvolume)."""
    name = f"prostate-{suffix}"
    if kube.get_or_none(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}") is None:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}})
    body = f.dataset(name)
    created = kube.create(body)
    volume = tmp_path_factory.mktemp("dataset")
    (volume / "data").mkdir()
    pv, claim = ingest_claim(created, volume)
    kube.create(pv)
    kube.create(claim)
    claim_path = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/persistentvolumeclaims/{claim['metadata']['name']}"
    # the volume controller binds the pair on its own clock: a workspace started before then is
    # (rightly) Blocked on "claim ... is not bound"
    wait_for(f"claim {claim['metadata']['name']} bound",
             lambda: ((kube.get_or_none(claim_path) or {}).get("status") or {}).get("phase") == "Bound", timeout=120)
    kube.patch_status(body, {"status": {"phase": "Ready"}})
    yield name
    kube.delete_quietly(claim)
    kube.delete_quietly(body)
    kube.delete_quietly(pv)


@pytest.fixture
def ws_env(spe_crds, storage_provisioner, operator, kube: Kube, tool_name: str, dataset_name: str, request):
    """A fresh active permit (and its namespace) for one test."""
    name = f"t{secrets.token_hex(4)}"
    env = PermitEnv(kube, name, tool_name, dataset_name)
    yield env
    env.cleanup()


class PermitEnv:
    def __init__(self, kube: Kube, permit: str, tool: str, dataset: str):
        self.kube, self.permit, self.tool, self.dataset = kube, permit, tool, dataset
        self.namespace = f"spe-{permit}"
        self._permit_body = None

    def create_permit(self, **kw) -> dict:
        kw.setdefault("datasets", [self.dataset])
        self._permit_body = f.permit(self.permit, **kw)
        self.kube.create(self._permit_body)
        self.wait_namespace()
        return self._permit_body

    def wait_namespace(self, timeout: float = 30) -> None:
        """The permit reconciler makes the namespace (with its quota and policies)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ns = self.kube.get_or_none(f"/api/v1/namespaces/{self.namespace}")
            if ns and ns.get("status", {}).get("phase") == "Active" and \
                    self.kube.get_or_none(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/default"):
                return
            time.sleep(0.2)
        pytest.fail(f"namespace {self.namespace} of permit {self.permit} never appeared")

    def workspace(self, name: str = "ws", **kw) -> dict:
        kw.setdefault("tool_name", self.tool)
        return f.workspace(name, self.namespace, self.permit, **kw)

    def cleanup(self) -> None:
        if self._permit_body is not None:
            self.kube.delete_quietly(self._permit_body)
        try:
            self.kube.api.delete(f"/api/v1/namespaces/{self.namespace}")
        except HttpError:
            pass

