"""The namespace's ResourceQuota (the permit's ceilings, enforced by the API server) and its
LimitRange (defaults, so a pod without requests/limits is admitted under the quota with sane ones).

The quota is the backstop behind the admission webhook's per-model GPU check: a quota cannot
tell GPU models apart, so it holds the sum over all permitted models.

Storage is capped per storage class of the workspaces' own volumes (the encrypted classes in
the settings), not with a namespace-wide ``requests.storage``: a workspace also claims its
datasets, read-only views (class ``""``) of each Dataset's volume, whose size is the data's,
not the researchers' -- a 500Gi dataset must not eat, or exceed, a 100Gi storage ceiling.
For the same reason the LimitRange sets no PersistentVolumeClaim maximum.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from spe_api import DataPermit, parse_quantity, permit_namespace

from ..settings import SpeSettings

QUOTA_NAME = "spe-permit-ceilings"
LIMIT_RANGE_NAME = "spe-permit-defaults"
GPU_RESOURCE = "nvidia.com/gpu"

# Per-container defaults for a pod that names none (a debugging pod, an init container).
# Workspaces always name their own (from the Workspace's resources). Clamped to the ceilings,
# because the API server refuses a LimitRange whose default exceeds its max.
DEFAULT_LIMITS = {"cpu": "1", "memory": "2Gi"}
DEFAULT_REQUESTS = {"cpu": "250m", "memory": "512Mi"}


def gpu_total(permit: DataPermit) -> int:
    return sum(g.count for g in permit.spec.ceilings.gpus)


def workspace_storage_classes(settings: SpeSettings) -> list[str]:
    """The classes workspace volumes may use: the encrypted ones (and the configured default)."""
    classes = set(settings.encrypted_storage_classes)
    if settings.default_storage_class:
        classes.add(settings.default_storage_class)
    return sorted(classes)


def build_resource_quota(permit: DataPermit, settings: SpeSettings) -> dict[str, Any]:
    c = permit.spec.ceilings
    hard = {
        # requests and limits both: a workspace's limits equal its requests, and a pod that
        # sets only limits gets requests = limits, so neither can run past the ceiling.
        "requests.cpu": c.cpu,
        "limits.cpu": c.cpu,
        "requests.memory": c.memory,
        "limits.memory": c.memory,
        # Extended resources only have a requests.* quota (requests = limits for them).
        f"requests.{GPU_RESOURCE}": str(gpu_total(permit)),
        **{f"{cls}.storageclass.storage.k8s.io/requests.storage": c.storage for cls in workspace_storage_classes(settings)},
        # One server pod per workspace (a StatefulSet of at most one replica, OrderedReady:
        # the old pod is gone before its successor is created).
        "pods": str(c.max_workspaces),
    }
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA_NAME, "namespace": permit_namespace(permit.name)},
        "spec": {"hard": hard},
    }


def _clamp(default: str, ceiling: str) -> str | None:
    """The default, or the ceiling when smaller; None when the ceiling is zero (nothing fits)."""
    ceiling_value = parse_quantity(ceiling)
    if ceiling_value == Decimal(0):
        return None
    return default if parse_quantity(default) <= ceiling_value else ceiling


def build_limit_range(permit: DataPermit, settings: SpeSettings) -> dict[str, Any]:
    c = permit.spec.ceilings
    ceilings = {"cpu": c.cpu, "memory": c.memory}
    container: dict[str, Any] = {"type": "Container", "default": {}, "defaultRequest": {}, "max": {}}
    for resource, ceiling in ceilings.items():
        limit = _clamp(DEFAULT_LIMITS[resource], ceiling)
        if limit is None:
            continue
        request = _clamp(DEFAULT_REQUESTS[resource], limit)
        container["default"][resource] = limit
        container["defaultRequest"][resource] = request or limit
        # No single container bigger than the whole permit.
        container["max"][resource] = ceiling
    limits = [{k: v for k, v in container.items() if v}]
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": LIMIT_RANGE_NAME, "namespace": permit_namespace(permit.name)},
        "spec": {"limits": limits},
    }
