"""The permit's namespace ``spe-<permit>``: labelled with the permit, Pod Security ``restricted``
enforced (and audited and warned, so a violation is visible however a pod gets there)."""

from __future__ import annotations

from typing import Any

from spe_api import DataPermit

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
            "name": settings.permit_namespace(permit.name),
            "labels": {**pod_security_labels(settings.pod_security_version), LABEL_TIER: str(permit.spec.tier)},
            "annotations": {"spe.ehds.io/permit-id": permit.spec.permit_id},
        },
    }
