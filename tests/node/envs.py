"""The SPE objects the node tests drive the operator with: a Tool whose image is the notebook
image built here (by digest), a Ready Dataset on an ingested hostPath volume, and permits whose namespaces
are pinned to the real node."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.fixtures.waiting import wait_for
from tests.workspace import factories as f
from tests.workspace.helpers import Kube

from .conftest import NOTEBOOK

READY_TIMEOUT = 300  # image unpack + JupyterLab's first start on two busy cores


class NodeEnv:
    """A Tool (the notebook image by digest), a Ready Dataset on a hostPath volume, and
    helpers to make permits whose namespaces are pinned to the real node."""

    def __init__(self, kube: Kube, real_node, tmp_path_factory):
        self.kube, self.real_node = kube, real_node
        self.suffix = secrets.token_hex(3)
        self.tool = f"jl-node-{self.suffix}"
        body = f.tool(self.tool, gpu=False)
        body["spec"]["image"] = real_node.image(NOTEBOOK)
        kube.create(body)
        self._objects: list[dict] = [body]
        self.dataset = f"ds-node-{self.suffix}"
        # Made as the Dataset reconciler makes one: spe-ingest into a volume, signed, its claim
        # labelled and owned (tests/dataset/volumes.py).
        from tests.dataset.volumes import make_dataset
        self.dataset_root, objects = make_dataset(kube, self.dataset, tmp_path_factory.mktemp("node-dataset"))
        self._objects += objects
        self.permits: list[str] = []

    def permit(self, datasets: list[str] | None = None, *, members: list[str] | None = None,
               export_policy: dict | None = None) -> str:
        """A new active permit; its namespace's pods land on the real node. Returns the namespace."""
        name = f"n{secrets.token_hex(4)}"
        body = f.permit(name, datasets=datasets or [self.dataset], cpu="4", memory="8Gi", members=members)
        if export_policy:
            body["spec"]["exportPolicy"] = export_policy
        self.kube.create(body)
        self._objects.append(body)
        ns = f"spe-{name}"
        wait_for(f"namespace {ns}", lambda: (lambda n: n if n and n.get("status", {}).get("phase") == "Active"
                                             else None)(self.kube.get_or_none(f"/api/v1/namespaces/{ns}")), timeout=30)
        wait_for("its default ServiceAccount",
                 lambda: self.kube.get_or_none(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), timeout=30)
        self.real_node.pin_namespace(ns)
        self.permits.append(ns)
        return ns

    def workspace(self, namespace: str, name: str = "ws", datasets: list[str] | None = None, *,
                  members: list[str] | None = None, running: bool = True) -> dict:
        body = f.workspace(name, namespace, namespace.removeprefix("spe-"), tool_name=self.tool, running=running,
                           datasets=datasets or [self.dataset], cpu="500m", memory="1Gi", members=members)
        self.kube.create(body)
        return body

    def wait_running(self, namespace: str, name: str = "ws", timeout: float = READY_TIMEOUT) -> dict:
        path = f"/apis/spe.ehds.io/v1alpha1/namespaces/{namespace}/workspaces/{name}"

        def probe():
            ws = self.kube.get_or_none(path)
            return ws if ws and (ws.get("status") or {}).get("phase") == "Running" else None
        try:
            return wait_for(f"workspace {namespace}/{name} Running", probe, timeout=timeout, interval=0.5)
        except (AssertionError, pytest.fail.Exception):
            pod = self.kube.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{name}-0")
            print("workspace:", json.dumps(self.kube.get_or_none(path), indent=1)[:3000])
            print("pod status:", json.dumps((pod or {}).get("status"), indent=1)[:3000])
            raise

    def cleanup(self) -> None:
        for obj in reversed(self._objects):
            self.kube.delete_quietly(obj)
        for ns in self.permits:
            try:
                self.kube.api.delete(f"/api/v1/namespaces/{ns}")
            except Exception:  # noqa: BLE001 - best effort: the permit's deletion removes it too
                pass
