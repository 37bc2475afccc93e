"""Applying a workspace's children: server-side apply, skipped when nothing changed, and pruning.

Applies are skipped when the same manifest was applied and the child has not changed since
(its spec token from the watch, see ``world.spec_token``, is the one the apply returned): a
reconcile of an unchanged workspace costs no API call, status updates by the children's own
controllers cost none either, and an edit of a StatefulSet's spec (its generation) or of the
Service, or the deletion of any child, makes the next reconcile re-apply and undo it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from spe_api import Workspace
from spe_kube import ApiError, KubeClient, kind_for

from . import names
from .world import Key, World, spec_token

WATCHED_KINDS = frozenset({"StatefulSet", "Service", "PersistentVolumeClaim"})
PRUNED_KINDS = frozenset({"StatefulSet", "Service"})  # claims hold research data: never pruned
STATEFULSET = kind_for("apps/v1", "StatefulSet")

ChildKey = tuple[str, str, str]  # (kind, namespace, name)


def _digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def child_key(manifest: dict[str, Any]) -> ChildKey:
    md = manifest["metadata"]
    return (manifest["kind"], md.get("namespace") or "", md["name"])


class ChildApplier:
    """Applies children for every workspace of the controller, remembering what it applied."""

    def __init__(self, kube: KubeClient, world: World):
        self.kube = kube
        self.world = world
        self._applied: dict[ChildKey, tuple[str, str]] = {}

    async def apply_all(self, manifests: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """Apply concurrently; (manifest, error) for each that failed."""
        results = await asyncio.gather(*(self.apply(m) for m in manifests), return_exceptions=True)
        errors = []
        for manifest, result in zip(manifests, results):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                kind, _, name = child_key(manifest)
                errors.append((manifest, f"{kind} {name}: {getattr(result, 'message', result)}"))
        return errors

    async def apply(self, manifest: dict[str, Any]) -> None:
        ck = child_key(manifest)
        digest = _digest(manifest)
        cached = self._applied.get(ck)
        if cached is not None and cached[0] == digest:
            if ck[0] not in WATCHED_KINDS:
                return
            observed = self.world.observed_token(ck[0], ck[1], ck[2])
            if observed is not None and observed == cached[1]:
                return
        result = await self.kube.apply(manifest)
        self._applied[ck] = (digest, spec_token(result))
        if ck[0] in WATCHED_KINDS:
            self.world.put_child(result)

    async def scale_down_orphan(self, ws: Workspace) -> None:
        """Without its Tool the StatefulSet cannot be rebuilt; make sure it runs nothing."""
        if self.world.observed_token("StatefulSet", ws.namespace, names.statefulset_name(ws.name)) is None:
            return
        try:
            await self.kube.merge_patch(STATEFULSET, names.statefulset_name(ws.name), {"spec": {"replicas": 0}},
                                        ws.namespace)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def prune(self, key: Key, wanted: set[ChildKey]) -> None:
        """Delete server children (found by their workspace label) that are no longer wanted."""
        stale = [ck for ck in self.world.children_of.get(key, ()) if ck[0] in PRUNED_KINDS and ck not in wanted]
        for kind, namespace, name in stale:
            api_version = "apps/v1" if kind == "StatefulSet" else "v1"
            await self.kube.delete(kind_for(api_version, kind), name, namespace)
