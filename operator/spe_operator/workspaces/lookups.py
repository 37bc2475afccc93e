"""What a workspace's reconcile reads besides the watched world, each cached for as long as it
may be: the hub's and the gateway's Service addresses, the permit namespace's isolation, and the
datasets' source volumes."""

from __future__ import annotations

import asyncio
from typing import Any

from spe_api import Workspace
from spe_kube import KubeClient, kind_for

from ..children import LABEL_OWNER_UID
from ..permits.network import build_network_policies
from ..permits.quota import QUOTA_NAME
from ..settings import SpeSettings
from . import checks
from .datasets import select_dataset_claim, volume_bound_to
from .statefulset import ServiceAddress, service_hostnames
from .world import Key, World

PV = kind_for("v1", "PersistentVolume")
SERVICE = kind_for("v1", "Service")
NETWORK_POLICY = kind_for("networking.k8s.io/v1", "NetworkPolicy")
RESOURCE_QUOTA = kind_for("v1", "ResourceQuota")
ISOLATION_TTL = 30.0  # seconds a complete isolation answer serves a namespace's starting servers


class Lookups:
    def __init__(self, kube: KubeClient, settings: SpeSettings, world: World):
        self.kube = kube
        self.settings = settings
        self.world = world
        self._sources: dict[tuple[str, str], tuple[dict[str, Any] | None, str]] = {}
        self._isolated: dict[Key, checks.Isolation] = {}
        self._namespace_isolation: dict[tuple[str, str], tuple[float, checks.Isolation]] = {}
        self._addresses: tuple[float, tuple[ServiceAddress, ...]] | None = None

    async def component_addresses(self) -> tuple[ServiceAddress, ...]:
        """The hub's and the gateway's Service addresses (workspaces have no DNS), looked up at
        most once per resync interval; a Service that does not exist yet gets no entry."""
        loop = asyncio.get_running_loop()
        if self._addresses is not None and loop.time() - self._addresses[0] < self.settings.reconcile_interval:
            return self._addresses[1]
        ns = self.settings.operator_namespace
        found = []
        for name in (self.settings.hub_service, self.settings.egress_service):
            svc = await self.kube.get_or_none(SERVICE, name, ns)
            ip = ((svc or {}).get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                found.append(ServiceAddress(ip, service_hostnames(name, ns)))
        self._addresses = (loop.time(), tuple(found))
        return self._addresses[1]

    async def isolation(self, key: Key, ws: Workspace, permit, pod) -> checks.Isolation | None:
        """The permit's NetworkPolicies and quota found in the namespace, looked up live (by the
        permit's uid) whenever a server is about to start; while it runs, the last answer."""
        if permit is None or not permit.metadata.uid or not ws.spec.running:
            self._isolated.pop(key, None)
            return None
        if pod is not None and key in self._isolated:
            return self._isolated[key]
        # One look per namespace serves all its workspaces for a while when complete (the permit
        # reconciler repairs drift within seconds); an incomplete answer is looked at again.
        loop = asyncio.get_running_loop()
        ns_key = (ws.namespace or "", permit.metadata.uid)
        cached = self._namespace_isolation.get(ns_key)
        if cached is not None and not cached[1].missing and loop.time() - cached[0] < ISOLATION_TTL:
            self._isolated[key] = cached[1]
            return cached[1]
        wanted = frozenset({f"NetworkPolicy/{p['metadata']['name']}"
                            for p in build_network_policies(permit, self.settings)} | {f"ResourceQuota/{QUOTA_NAME}"})
        selector = f"{LABEL_OWNER_UID}={permit.metadata.uid}"
        found: set[str] = set()
        for rk in (NETWORK_POLICY, RESOURCE_QUOTA):
            for item in await self.kube.list(rk, ws.namespace, label_selector=selector):
                if item["metadata"].get("deletionTimestamp") is None:
                    found.add(f"{rk.kind}/{item['metadata']['name']}")
        self._isolated[key] = result = checks.Isolation(wanted, frozenset(found))
        self._namespace_isolation[ns_key] = (loop.time(), result)
        return result

    async def source_volume(self, ds, keep: int | None = None) -> tuple[dict[str, Any] | None, str, int]:
        """(PersistentVolume, why none, revision) of the dataset: the one bound to the newest
        ready claim its ingest produced (found by labels and owner, see ``datasets``; revision
        ``keep``, the one the server's pod mounts, while it is ready), never a volume named in
        the Dataset's status. Cached per claim resourceVersion."""
        source = select_dataset_claim(ds, self.world.claims_of_dataset(ds.name), self.settings.operator_namespace,
                                      keep=keep)
        if source.claim is None:
            return None, source.detail, 0
        md = source.claim["metadata"]
        cache_key = (ds.name, f"{md.get('uid')}/{md.get('resourceVersion')}")
        if cache_key not in self._sources:
            volume = await self.kube.get_or_none(PV, source.volume_name)
            problem = volume_bound_to(volume, source.claim)
            # Two revisions may be in use at once (a running server keeps its own): the last two.
            kept = [k for k in self._sources if k[0] == ds.name][-1:]
            self._sources = {k: v for k, v in self._sources.items() if k[0] != ds.name or k in kept}
            self._sources[cache_key] = (None, problem) if problem else (volume, "")
        volume, problem = self._sources[cache_key]
        return volume, problem, source.revision

    def verifier_missing(self) -> tuple[str, str] | None:
        """What the verification of datasets before use lacks in the settings (None: nothing)."""
        if not self.settings.ingest_image:
            return "ingest image to verify them with", "ingest_image / SPE_INGEST_IMAGE"
        if not self.settings.dataset_public_key:
            return "public key of the site's dataset signing key", "dataset_public_key / SPE_DATASET_PUBLIC_KEY"
        return None
