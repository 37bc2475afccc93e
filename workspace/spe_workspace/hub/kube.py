"""The hub's one Kubernetes client (its service account in the cluster, a kubeconfig in tests)."""

from __future__ import annotations

from spe_kube import KubeClient, load_kubeconfig

_CLIENTS: dict[str, KubeClient] = {}


def hub_kube(kubeconfig: str | None = None) -> KubeClient:
    """A client shared by the spawners and pages of this hub process (one pooled session)."""
    key = kubeconfig or ""
    client = _CLIENTS.get(key)
    if client is None:
        client = _CLIENTS[key] = KubeClient(load_kubeconfig(kubeconfig or None), field_manager="spe-hub")
    return client
