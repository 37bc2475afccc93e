"""DataPermit domain: pure builders of the permit namespace's children, and the desired set.

One module per job: ``namespace`` (the namespace and Pod Security), ``quota`` (ResourceQuota
and LimitRange), ``network`` (NetworkPolicies), ``rbac`` (RoleBindings of the hub and the
gateway), ``phase`` (validity window, suspension, revocation), ``status`` (the permit's status
and the stop of its workspaces). The Kopf wiring is in ``spe_operator.handlers.permits``.
"""

from __future__ import annotations

from typing import Any

from spe_api import DataPermit, DataPermitPhase

from ..children import LABEL_PERMIT, adopt
from ..settings import SpeSettings
from .namespace import build_namespace
from .network import build_network_policies
from .quota import build_limit_range, build_resource_quota
from .rbac import build_role_bindings

# Every kind the permit reconciler owns (what it prunes and watches for drift), in apply order.
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)

COMPONENTS = {
    "Namespace": "permit-namespace",
    "ResourceQuota": "permit-quota",
    "LimitRange": "permit-limits",
    "NetworkPolicy": "permit-network",
    "RoleBinding": "permit-access",
}


def owner_of(permit: DataPermit) -> dict[str, Any]:
    """The owner reference source for the permit's children (needs the server-set uid)."""
    if not permit.metadata.uid:
        raise ValueError(f"DataPermit {permit.name!r} has no uid: load it from the API server")
    return {"apiVersion": permit.api_version, "kind": permit.kind,
            "metadata": {"name": permit.name, "uid": permit.metadata.uid}}


def desired_children(permit: DataPermit, settings: SpeSettings, phase: DataPermitPhase) -> list[dict[str, Any]]:
    """Every child the permit should have now, adopted (labels + owner reference), namespace first."""
    owner = owner_of(permit)
    raw = [
        build_namespace(permit, settings),
        build_resource_quota(permit, settings),
        build_limit_range(permit, settings),
        *build_network_policies(permit, settings),
        *build_role_bindings(permit, settings, phase),
    ]
    return [adopt(child, owner, component=COMPONENTS[child["kind"]], permit=permit.name) for child in raw]


__all__ = ["CHILD_KINDS", "LABEL_PERMIT", "desired_children", "owner_of"]
