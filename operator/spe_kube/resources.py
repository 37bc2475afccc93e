"""The API coordinates (group, version, plural, scope) of the kinds the components touch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


_KINDS: dict[tuple[str, str], ResourceKind] = {}


def register_kind(api_version: str, kind: str, plural: str, namespaced: bool) -> ResourceKind:
    rk = ResourceKind(api_version, kind, plural, namespaced)
    _KINDS[(api_version, kind)] = rk
    return rk


def kind_for(api_version: str, kind: str) -> ResourceKind:
    try:
        return _KINDS[(api_version, kind)]
    except KeyError:
        raise KeyError(f"unknown kind {api_version}/{kind}: register it with register_kind()") from None


for _av, _k, _p, _ns in [
    ("v1", "Namespace", "namespaces", False),
    ("v1", "Node", "nodes", False),
    ("v1", "Pod", "pods", True),
    ("v1", "Service", "services", True),
    ("v1", "ServiceAccount", "serviceaccounts", True),
    ("v1", "Secret", "secrets", True),
    ("v1", "ConfigMap", "configmaps", True),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    ("v1", "PersistentVolume", "persistentvolumes", False),
    ("v1", "ResourceQuota", "resourcequotas", True),
    ("v1", "LimitRange", "limitranges", True),
    ("v1", "Event", "events", True),
    ("events.k8s.io/v1", "Event", "events", True),
    ("apps/v1", "StatefulSet", "statefulsets", True),
    ("apps/v1", "Deployment", "deployments", True),
    ("apps/v1", "ReplicaSet", "replicasets", True),
    ("batch/v1", "Job", "jobs", True),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ("storage.k8s.io/v1", "StorageClass", "storageclasses", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False),
    ("coordination.k8s.io/v1", "Lease", "leases", True),
    ("spe.ehds.io/v1alpha1", "DataPermit", "datapermits", False),
    ("spe.ehds.io/v1alpha1", "Dataset", "datasets", False),
    ("spe.ehds.io/v1alpha1", "Workspace", "workspaces", True),
    ("spe.ehds.io/v1alpha1", "OutputReview", "outputreviews", True),
    ("spe.ehds.io/v1alpha1", "Tool", "tools", False),
]:
    register_kind(_av, _k, _p, _ns)
