"""Manifests of the objects the workspace tests create (pure; shared by unit and cluster tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

IMAGE = "registry.invalid/spe/jupyterlab:4.2@sha256:" + "a" * 64
GPU_IMAGE = "registry.invalid/spe/jupyterlab-cuda:4.2@sha256:" + "b" * 64
API = "spe.ehds.io/v1alpha1"


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tool(name: str = "jupyterlab", *, gpu: bool = True, approved: bool = True, revoked: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"displayName": "JupyterLab", "image": GPU_IMAGE if gpu else IMAGE,
                            "kind": "jupyter", "gpuCapable": gpu}
    if approved:
        spec["approval"] = {"approvedBy": "reviewer@example.org", "approvedAt": "2026-01-01T00:00:00Z",
                            "scan": {"scanner": "trivy 0.58", "scannedAt": "2026-01-01T00:00:00Z"}}
    if revoked:
        spec.update(revoked=True, revocationReason="CVE found")
    return {"apiVersion": API, "kind": "Tool", "metadata": {"name": name}, "spec": spec}


def permit(name: str, *, datasets: list[str] | None = None, members: list[str] | None = None,
           not_after: datetime | None = None, not_before: datetime | None = None,
           gpus: list[dict] | None = None, max_workspaces: int = 10, cpu: str = "16", memory: str = "64Gi",
           storage: str = "200Gi") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "permitId": f"HDAB-TEST-{name}",
        "purpose": "Testing workspaces of the secure processing environment.",
        "members": [{"subject": m} for m in (members or ["alice@example.org"])],
        "datasets": datasets or ["prostate-mr"],
        "notAfter": rfc3339(not_after or now() + timedelta(days=30)),
        "ceilings": {"cpu": cpu, "memory": memory, "storage": storage, "maxWorkspaces": max_workspaces,
                     "gpus": gpus if gpus is not None else [{"model": "NVIDIA-L40S", "count": 4},
                                                            {"model": "NVIDIA-A30", "count": 4}]},
    }
    if not_before is not None:
        spec["notBefore"] = rfc3339(not_before)
    return {"apiVersion": API, "kind": "DataPermit", "metadata": {"name": name}, "spec": spec}


def dataset(name: str = "prostate-mr") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Dataset", "metadata": {"name": name}, "spec": {
        "source": {"claimName": f"src-{name}", "path": "/"},
        "pseudonymisation": {"keySecret": {"name": "pseudonym-key"}, "site": "umcg"},
        "storage": {"size": "1Gi"},
        "signingKeySecret": {"name": "signing-key"},
    }}


def workspace(name: str, namespace: str, permit_name: str, *, tool_name: str = "jupyterlab", running: bool = False,
              gpus: dict | None = None, datasets: list[str] | None = None, cpu: str = "1", memory: str = "2Gi",
              storage_class: str | None = None, idle_minutes: int = 120, size: str = "1Gi",
              members: list[str] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        resources["gpus"] = gpus
    storage: dict[str, Any] = {"size": size}
    if storage_class:
        storage["storageClassName"] = storage_class
    return {"apiVersion": API, "kind": "Workspace", "metadata": {"name": name, "namespace": namespace}, "spec": {
        "permit": permit_name, "members": members or ["alice@example.org"], "tool": tool_name,
        "resources": resources, "storage": storage, "datasets": datasets or [],
        "idleTimeoutMinutes": idle_minutes, "running": running}}
