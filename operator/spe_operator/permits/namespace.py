"""The permit's namespace ``spe-<permit>``: labelled with the permit, Pod Security ``restricted``
enforced (and audited and warned, so a violation is visible however a pod gets there)."""

from __future__ import annotations

from typing import Any

from spe_api import DataPermit, Message, Reason, permit_namespace

from ..settings import SpeSettings

COMPONENT = "permit-namespace"
PSA_PREFIX = "pod-security.kubernetes.io"
PSA_LEVEL = "restricted"
# The label the hub and tests select permit namespaces by (besides spe.ehds.io/permit).
LABEL_TIER = "spe.ehds.io/tier"


def pod_security_labels(version: str) -> dict[str, str]:
    """Enforce ``restricted`` at a pinned version: a cluster upgrade does not change the policy
    behind the operator's back (raise ``pod_security_version`` after review)."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"{PSA_PREFIX}/{mode}"] = PSA_LEVEL
        labels[f"{PSA_PREFIX}/{mode}-version"] = version
    return labels


def build_namespace(permit: DataPermit, settings: SpeSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": permit_namespace(permit.name),
            "labels": {**pod_security_labels(settings.pod_security_version), LABEL_TIER: str(permit.spec.tier)},
            "annotations": {"spe.ehds.io/permit-id": permit.spec.permit_id},
        },
    }


# Namespaces the cluster itself owns; a permit never gets one of them, whatever the prefix is
# configured to (the operator's own namespace is added from the settings).
CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def namespace_refusal(permit: DataPermit, settings: SpeSettings,
                      existing: dict[str, Any] | None) -> tuple[str, str] | None:
    """(reason, message) when the permit must not touch its namespace, else None.

    A permit's namespace is its own only if the operator made it for this very permit (owner
    reference to the permit's uid). A namespace that exists without that -- made by someone
    else, or reserved for the SPE or the cluster -- is never adopted, relabelled or given
    policies, and so never deleted with the permit.
    """
    namespace = permit_namespace(permit.name)
    if (namespace in CLUSTER_NAMESPACES or namespace.startswith("kube-")
            or namespace == settings.operator_namespace):
        return Reason.NAMESPACE_RESERVED, Message.PERMIT_NAMESPACE_RESERVED.format(namespace=namespace)
    if existing is None:
        return None
    owners = (existing.get("metadata") or {}).get("ownerReferences") or []
    if any(ref.get("uid") == permit.metadata.uid and ref.get("kind") == permit.kind for ref in owners):
        return None
    return Reason.NAMESPACE_TAKEN, Message.PERMIT_NAMESPACE_TAKEN.format(
        namespace=namespace, permit=permit.name, uid=permit.metadata.uid)
