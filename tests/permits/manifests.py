"""Rendering and reading the kustomize manifests (shared by the manifest and RBAC tests)."""

from __future__ import annotations

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


def base_rbac_objects() -> list[dict]:
    """What the operator fixture installs to run the operator with the manifests' identity:
    the namespace, the service accounts and every RBAC object of manifests/base."""
    docs = []
    for name in ("namespace.yaml", "serviceaccounts.yaml", "operator-rbac.yaml", "permit-roles.yaml"):
        docs += load_yaml(MANIFESTS / "base" / name)
    return docs
