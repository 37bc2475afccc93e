"""A small synchronous view of the API server for the workspace tests: paths, waits, conditions."""

from __future__ import annotations

import time
from typing import Any

from spe_dev.api import Api, HttpError
from tests.fixtures.waiting import wait_for  # noqa: F401 - the workspace tests' wait, re-exported

PLURALS = {"Tool": "tools", "Dataset": "datasets", "DataPermit": "datapermits", "Workspace": "workspaces",
           "PersistentVolume": "persistentvolumes", "PersistentVolumeClaim": "persistentvolumeclaims",
           "StatefulSet": "statefulsets", "Service": "services", "Pod": "pods", "Namespace": "namespaces"}


def path_of(obj: dict[str, Any], name: bool = True) -> str:
    api_version, kind = obj["apiVersion"], obj["kind"]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    ns = obj["metadata"].get("namespace")
    out = f"{prefix}/namespaces/{ns}/{PLURALS[kind]}" if ns else f"{prefix}/{PLURALS[kind]}"
    return f"{out}/{obj['metadata']['name']}" if name else out


def ws_path(namespace: str, name: str = "") -> str:
    base = f"/apis/spe.ehds.io/v1alpha1/namespaces/{namespace}/workspaces"
    return f"{base}/{name}" if name else base


def condition(obj: dict | None, ctype: str) -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None




class Kube:
    def __init__(self, api: Api):
        self.api = api

    def create(self, obj: dict, *, webhook_grace: float = 15.0) -> dict:
        """Create; while a just-started operator's webhook server is not listening yet, the API
        server answers 500 "failed calling webhook": retried for ``webhook_grace`` seconds."""
        deadline = time.monotonic() + webhook_grace
        while True:
            try:
                return self.api.create(path_of(obj, name=False), obj)
            except HttpError as err:
                if err.status != 500 or "failed calling webhook" not in err.body or time.monotonic() > deadline:
                    raise
                time.sleep(0.25)

    def get_or_none(self, path: str) -> dict | None:
        return self.api.get_or_none(path)

    def get(self, obj: dict) -> dict | None:
        return self.get_or_none(path_of(obj))

    def patch(self, path: str, body: dict) -> dict:
        return self.api.call("PATCH", path, body, content_type="application/merge-patch+json")

    def patch_status(self, obj: dict, body: dict) -> dict:
        return self.patch(path_of(obj) + "/status", body)

    def delete_quietly(self, obj: dict) -> None:
        try:
            self.api.delete(path_of(obj))
        except HttpError as err:
            if err.status != 404:
                raise

    def items(self, path: str, selector: str | None = None) -> list[dict]:
        query = f"?labelSelector={selector}" if selector else ""
        return self.api.get(path + query).get("items", [])
