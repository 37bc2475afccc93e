"""The one adoption helper: standard labels and owner references for every child object,
plus applying a desired set of children (server-side apply) and pruning the ones no longer wanted.

Children are found by label (``spe.ehds.io/owner-uid``), never by guessing names.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping
from typing import Any

from spe_kube import ApiError, KubeClient, kind_for

MANAGED_BY = "spe-operator"
PART_OF = "spe"
LABEL_PERMIT = "spe.ehds.io/permit"
LABEL_WORKSPACE = "spe.ehds.io/workspace"
LABEL_OWNER_UID = "spe.ehds.io/owner-uid"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"


def standard_labels(*, component: str, permit: str | None = None, workspace: str | None = None) -> dict[str, str]:
    """The labels every SPE child carries (NetworkPolicies and the hub select on these)."""
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PART_OF: PART_OF, LABEL_COMPONENT: component}
    if permit:
        labels[LABEL_PERMIT] = permit
    if workspace:
        labels[LABEL_WORKSPACE] = workspace
    return labels


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    md = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def adopt(child: Mapping[str, Any], owner: Mapping[str, Any], *, component: str, permit: str | None = None,
          workspace: str | None = None) -> dict[str, Any]:
    """Return a copy of ``child`` labelled and owned by ``owner`` (pure)."""
    out = copy.deepcopy(dict(child))
    md = out.setdefault("metadata", {})
    labels = md.setdefault("labels", {})
    labels.update(standard_labels(component=component, permit=permit, workspace=workspace))
    labels[LABEL_OWNER_UID] = owner["metadata"]["uid"]
    md["ownerReferences"] = [owner_reference(owner)]
    return out


async def apply_children(kube: KubeClient, desired: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Server-side apply every desired child (in order: namespaces before what lives in them)."""
    applied = []
    for manifest in desired:
        applied.append(await kube.apply(dict(manifest)))
    return applied


async def prune_children(kube: KubeClient, owner_uid: str, desired: Iterable[Mapping[str, Any]],
                         kinds: Iterable[tuple[str, str]], namespace: str | None = None) -> list[str]:
    """Delete children of ``owner_uid`` of the given kinds that are not in ``desired``.

    Returns ``"Kind/name"`` of what was deleted. Safe to repeat: missing objects are ignored.
    """
    wanted = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in desired}
    deleted: list[str] = []
    for api_version, kind in kinds:
        rk = kind_for(api_version, kind)
        found = await kube.list(rk, namespace, label_selector=f"{LABEL_OWNER_UID}={owner_uid}")
        stale = [o for o in found
                 if (kind, o["metadata"].get("namespace"), o["metadata"]["name"]) not in wanted]
        await asyncio.gather(*(kube.delete(rk, o["metadata"]["name"], o["metadata"].get("namespace"))
                               for o in stale))
        deleted.extend(f"{kind}/{o['metadata']['name']}" for o in stale)
    return deleted


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.not_found
