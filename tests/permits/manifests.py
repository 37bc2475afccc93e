"""Rendering and reading the kustomize manifests (shared by the manifest and RBAC tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("central", "node")


def kubectl_binary() -> str | None:
    """The kubectl built with the control plane, else one on PATH (kustomize works offline)."""
    try:
        from spe_dev.settings import Settings  # noqa: PLC0415
        built = Settings.from_env().binary("kubectl")
        if os.access(built, os.X_OK):
            return str(built)
    except Exception:  # noqa: BLE001 - no checkout layout / no build yet
        pass
    return shutil.which("kubectl")


def kustomize(path: Path) -> list[dict]:
    kubectl = kubectl_binary()
    if kubectl is None:
        raise RuntimeError("no kubectl to render kustomize with: run `make controlplane`")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def load_yaml(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# The ConfigMaps that carry an installation's settings (the overlay's settings.env and what
# manifests/components/settings copies from it); kustomize suffixes their names with a hash.
SETTINGS_CONFIG_MAPS = ("spe-operator-config", "spe-egress-config", "spe-hub-config")


def without_configuration(docs: list[dict]) -> dict[tuple, dict]:
    """Everything but the settings (those ConfigMaps' data, the storage class the settings file
    names on the PVCs), with the generated (hashed) names normalised, by (kind, namespace, name)."""
    generated = {}
    for name in SETTINGS_CONFIG_MAPS:
        for d in docs:
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(f"{name}-"):
                generated[d["metadata"]["name"]] = name
    out = {}
    for doc in docs:
        text = json.dumps(doc)
        for hashed, name in generated.items():
            text = text.replace(hashed, name)
        doc = json.loads(text)
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in SETTINGS_CONFIG_MAPS:
            doc = {**doc, "data": None}
        if doc["kind"] == "PersistentVolumeClaim":
            doc["spec"].pop("storageClassName", None)
        out[(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])] = doc
    return out
