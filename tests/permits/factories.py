"""Builders of test objects for the permit tests (plain manifests and parsed models)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from spe_api import DataPermit, Workspace

UID = "0b8f3c1e-1111-4222-8333-444455556666"


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def permit_manifest(name: str = "p1", *, not_before: datetime | None = None, not_after: datetime | None = None,
                    **spec: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    body: dict[str, Any] = {
        "apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit",
        "metadata": {"name": name},
        "spec": {
            "permitId": f"HDAB-TEST-{name}",
            "purpose": "Testing the permit reconciler end to end.",
            "members": [{"subject": "alice"}, {"subject": "bob"}],
            "datasets": ["ds1"],
            "notAfter": rfc3339(not_after or now + timedelta(days=30)),
            "ceilings": {"cpu": "8", "memory": "32Gi", "storage": "100Gi",
                         "gpus": [{"model": "NVIDIA-L40S", "count": 2}, {"model": "NVIDIA-A30", "count": 1}],
                         "maxWorkspaces": 5},
        },
    }
    if not_before is not None:
        body["spec"]["notBefore"] = rfc3339(not_before)
    body["spec"].update(spec)
    return body


def permit(name: str = "p1", uid: str = UID, generation: int = 1, **kwargs: Any) -> DataPermit:
    body = permit_manifest(name, **kwargs)
    body["metadata"].update(uid=uid, generation=generation)
    return DataPermit.from_manifest(body)


def workspace_manifest(name: str, permit_name: str = "p1", *, namespace: str | None = None, running: bool = False,
                       cpu: str = "2", memory: str = "8Gi", gpus: dict | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        resources["gpus"] = gpus
    return {
        "apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace",
        "metadata": {"name": name, "namespace": namespace or f"spe-{permit_name}"},
        "spec": {"permit": permit_name, "members": ["alice"], "tool": "jupyterlab", "resources": resources,
                 "storage": {"size": "10Gi"}, "running": running},
    }


def workspace(name: str, permit_name: str = "p1", **kwargs: Any) -> Workspace:
    body = workspace_manifest(name, permit_name, **kwargs)
    body["metadata"].update(uid=f"uid-{name}", generation=1)
    return Workspace.from_manifest(body)
