"""Fixtures of the permit tests on the real control plane: CRDs, a Dataset and a Tool to name,
and small synchronous helpers (the operator runs in its own thread)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from spe_dev.api import HttpError
from tests.fixtures import waiting

from .manifests import ROOT

API = "/apis/spe.ehds.io/v1alpha1"


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """The suite's one wait (tests/fixtures/waiting.py) with the permit tests' short defaults; an
    error from the API server counts as "not yet"."""
    return waiting.wait_for(what, probe, timeout, interval, retry_on=(HttpError,))


class Kube:
    """What the tests need from the API server, as cluster admin."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.api = cluster.api()

    def get(self, path: str) -> dict | None:
        return self.api.get_or_none(path)

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """Sessions of several people share the developer cluster, each with its own fail-closed
        webhook; while another session restarts its operator, its webhook refuses everything for
        a moment. Retry that (only that) for a few seconds."""
        deadline = time.monotonic() + 15
        while True:
            try:
                return call()
            except HttpError as err:
                if err.status != 500 or "failed calling webhook" not in err.body or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def create(self, path: str, obj: dict) -> dict:
        return self._retrying(lambda: self.api.create(path, obj))

    def delete(self, path: str) -> None:
        try:
            self.api.delete(path)
        except HttpError as err:
            if err.status != 404:
                raise

    def merge(self, path: str, patch: dict) -> dict:
        return self._retrying(lambda: self.api.call("PATCH", path, patch, "application/merge-patch+json"))

    def permit(self, name: str) -> dict | None:
        return self.get(f"{API}/datapermits/{name}")

    def workspace(self, ns: str, name: str) -> dict | None:
        return self.get(f"{API}/namespaces/{ns}/workspaces/{name}")

    def items(self, path: str) -> list[dict]:
        return self.api.get(path).get("items", [])


@pytest.fixture(scope="module")
def kube(spe_crds, operator) -> Kube:
    kube = Kube(spe_crds)
    # The operator's webhook answers (fail-closed: until it does, every SPE object is refused).
    probe = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": "probe"},
             "spec": {"permitId": "probe", "purpose": "webhook readiness probe", "members": [{"subject": "a"}],
                      "datasets": ["none"], "notAfter": "2099-01-01T00:00:00Z"}}
    wait_for("the admission webhook to answer",
             lambda: kube.api.raw("POST", f"{API}/datapermits?dryRun=All", probe)[0] != 500, 30, interval=0.2)
    return kube


@pytest.fixture(scope="module")
def world(kube) -> Iterator[dict[str, str]]:
    """A Dataset and an approved Tool that the module's permits and workspaces name."""
    suffix = secrets.token_hex(3)
    dataset = yaml.safe_load((ROOT / "examples" / "dataset-lung-ct.yaml").read_text())
    dataset["metadata"]["name"] = f"ds-{suffix}"
    tool = yaml.safe_load((ROOT / "examples" / "tool-jupyterlab.yaml").read_text())
    tool["metadata"]["name"] = f"tool-{suffix}"
    kube.create(f"{API}/datasets", dataset)
    kube.create(f"{API}/tools", tool)
    try:
        yield {"suffix": suffix, "dataset": dataset["metadata"]["name"], "tool": tool["metadata"]["name"]}
    finally:
        kube.delete(f"{API}/datasets/{dataset['metadata']['name']}")
        kube.delete(f"{API}/tools/{tool['metadata']['name']}")


@pytest.fixture
def permits(kube, world, request) -> Iterator[Callable[..., dict]]:
    """Create DataPermits for one test (unique names); deleted afterwards."""
    from .factories import permit_manifest  # noqa: PLC0415

    made: list[str] = []

    def make(tag: str = "p", **kwargs: Any) -> dict:
        name = f"{tag}-{world['suffix']}-{secrets.token_hex(2)}"
        body = permit_manifest(name, **kwargs)
        body["spec"]["datasets"] = [world["dataset"]]
        body["spec"]["permitId"] = f"HDAB-TEST-{name}"
        made.append(name)
        return kube.create(f"{API}/datapermits", body)

    yield make
    for name in made:
        kube.delete(f"{API}/datapermits/{name}")


def make_workspace(kube: Kube, world: dict, permit_name: str, name: str, *, running: bool) -> dict:
    from .factories import workspace_manifest  # noqa: PLC0415

    body = workspace_manifest(name, permit_name, running=running, cpu="1", memory="1Gi")
    body["spec"]["tool"] = world["tool"]
    body["spec"]["storage"]["size"] = "1Gi"
    ns = body["metadata"]["namespace"]
    return kube.create(f"{API}/namespaces/{ns}/workspaces", body)
