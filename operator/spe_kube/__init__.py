"""A small async Kubernetes API client shared by the SPE components.

It speaks plain JSON over HTTPS with the credentials of a kubeconfig or of an
in-cluster service account, and offers the few verbs the components need:
get, list, create, server-side apply, merge-patch (also of ``status``), delete.
Manifests are plain dicts, the same ones the pure builders return.
"""

from .client import ApiError, KubeClient
from .config import KubeConfig, load_kubeconfig
from .resources import ResourceKind, kind_for, register_kind

__all__ = [
    "ApiError",
    "KubeClient",
    "KubeConfig",
    "ResourceKind",
    "kind_for",
    "load_kubeconfig",
    "register_kind",
]
