"""Kubeconfig files for the admin and for each component (absolute file references)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .pki import Pki

CLUSTER_NAME = "spe-dev"


def kubeconfig_doc(server: str, pki: Pki, stem: str) -> dict:
    user = f"spe-dev-{stem}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {
            "server": server,
            "certificate-authority": str(pki.ca_cert),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki.cert(stem)),
            "client-key": str(pki.key(stem)),
        }}],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, pki: Pki, stem: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_doc(server, pki, stem), sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
