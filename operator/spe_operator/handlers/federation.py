"""Federation sync (docs/federation.md): thin wiring around ``spe_operator.federation``.

One level-based loop per operator, every ``federation_sync_interval`` seconds, by role:

- central: list DataPermits, approved Tools and the joined nodes' ManagedClusters; apply the
  ManifestWorks they imply (``federation.works``), delete the ones no longer implied; read each
  node's ``spe-federation`` work's status feedback into its catalogue ConfigMap
  ``spe-catalogue-<node>`` (``federation.catalogue``).
- node: publish the local Datasets' catalogue entries in ``spe-federation-catalogue`` (OCM reads
  it, read-only, and returns it as feedback); read central's heartbeat and, when contact is lost
  or regained, re-run the reconcile of every mirrored permit (``handlers.permits`` suspends
  them while contact is lost, through ``federation.lease.effective_permit``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import kopf

from spe_api import GROUP, VERSION
from spe_kube import ApiError, KubeClient, kind_for

from ..children import LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY
from ..federation import COMPONENT, HEARTBEAT_CONFIGMAP, LABEL_MIRRORED, LABEL_NODE
from ..federation.catalogue import central_catalogue, export_configmap, parse_checkpoint, parse_entries
from ..federation.lease import Contact, contact
from ..federation.works import (FEEDBACK_CHECKPOINT, FEEDBACK_DATASETS, MANAGED_CLUSTER, MANIFEST_WORK, NODE_WORK,
                                desired_works, feedback_values)
from ..registry import REGISTRY
from ..settings import SpeSettings

log = logging.getLogger(__name__)

PERMIT = kind_for(f"{GROUP}/{VERSION}", "DataPermit")
TOOL = kind_for(f"{GROUP}/{VERSION}", "Tool")
DATASET = kind_for(f"{GROUP}/{VERSION}", "Dataset")
CONFIGMAP = kind_for("v1", "ConfigMap")
FIELD_MANAGER = "spe-operator-federation"
OURS = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={COMPONENT}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@kopf.on.startup(registry=REGISTRY)
async def start_federation(memo: kopf.Memo, **_: Any) -> None:
    settings: SpeSettings = memo.settings
    memo.federation_contact = None
    memo.federation_task = None
    if settings.federation_role == "none":
        return
    sync = sync_central if settings.federation_role == "central" else sync_node
    memo.federation_task = asyncio.get_running_loop().create_task(_loop(memo, sync), name="federation-sync")


@kopf.on.cleanup(registry=REGISTRY)
async def stop_federation(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("federation_task")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _loop(memo: kopf.Memo, sync) -> None:
    settings: SpeSettings = memo.settings
    while True:
        try:
            await sync(memo)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one failed sync must not end the loop; the next retries
            log.exception("federation sync (%s) failed; retrying in %.0fs", settings.federation_role,
                          settings.federation_sync_interval)
        await asyncio.sleep(settings.federation_sync_interval)


# --- central ----------------------------------------------------------------------------------

async def sync_central(memo: kopf.Memo) -> None:
    kube: KubeClient = memo.kube
    settings: SpeSettings = memo.settings
    permits, tools, clusters, existing = await asyncio.gather(
        kube.list(PERMIT), kube.list(TOOL), kube.list(MANAGED_CLUSTER), kube.list(MANIFEST_WORK, label_selector=OURS))
    now = _now()
    desired = desired_works(permits, clusters, tools, settings.federation_namespace, now,
                            settings.operator_namespace)
    wanted = {(w["metadata"]["namespace"], w["metadata"]["name"]) for w in desired}
    for work in desired:
        try:
            await kube.apply(work, field_manager=FIELD_MANAGER)
        except ApiError as err:
            if not err.not_found:  # the node's namespace goes with its ManagedCluster
                raise
    for work in existing:
        key = (work["metadata"]["namespace"], work["metadata"]["name"])
        if key not in wanted:
            await kube.delete(MANIFEST_WORK, key[1], key[0])
    nodes_seen = set()
    for work in existing:
        if work["metadata"]["name"] != NODE_WORK:
            continue
        node = work["metadata"]["namespace"]
        nodes_seen.add(node)
        values = feedback_values(work)
        datasets = next((v[FEEDBACK_DATASETS] for v in values.values() if FEEDBACK_DATASETS in v), None)
        checkpoint = next((v[FEEDBACK_CHECKPOINT] for v in values.values() if FEEDBACK_CHECKPOINT in v), None)
        entries, refused = parse_entries(datasets)
        for why in refused:
            log.warning("node %s: catalogue entry refused: %s", node, why)
        await kube.apply(central_catalogue(node, settings.federation_namespace, entries, refused,
                                           parse_checkpoint(checkpoint), now), field_manager=FIELD_MANAGER)
    for cm in await kube.list(CONFIGMAP, settings.federation_namespace, label_selector=f"{OURS},{LABEL_NODE}"):
        if cm["metadata"]["labels"][LABEL_NODE] not in nodes_seen and cm["metadata"]["labels"][LABEL_NODE] not in {
                w["metadata"]["namespace"] for w in desired}:
            await kube.delete(CONFIGMAP, cm["metadata"]["name"], settings.federation_namespace)


# --- node -------------------------------------------------------------------------------------

async def sync_node(memo: kopf.Memo) -> None:
    kube: KubeClient = memo.kube
    settings: SpeSettings = memo.settings
    datasets = await kube.list(DATASET)
    await kube.apply(export_configmap(datasets, settings.federation_namespace), field_manager=FIELD_MANAGER)
    heartbeat = await kube.get_or_none(CONFIGMAP, HEARTBEAT_CONFIGMAP, settings.federation_namespace)
    state = contact(heartbeat, _now(), settings.federation_lease)
    previous: Contact | None = memo.get("federation_contact")
    memo.federation_contact = state
    if previous is None or previous.lost != state.lost:
        (log.warning if state.lost else log.info)("federation: %s", state.message)
        queue = memo.get("permit_queue")
        if queue is not None:
            for permit in await kube.list(PERMIT, label_selector=f"{LABEL_MIRRORED}=true"):
                queue.kick(permit["metadata"]["name"])
