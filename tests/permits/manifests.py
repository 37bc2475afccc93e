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
