"""The one reconcile path of Workspaces, and the work queue that drives it.

Create, update, resume (the initial listing), child events (pods, StatefulSet, Service,
claims: label-selected watches, see ``watch``), changes of the referenced Tool / Dataset / DataPermit, deadlines (idle timeout, the
permit's notBefore/notAfter) and a periodic resync all *enqueue* a workspace; workers take
keys off the queue, at most one reconcile per workspace at a time (a key enqueued while it is
being reconciled runs once more afterwards). A reconcile is level-based and idempotent:

    desired children (pure builders) -> server-side apply -> prune -> status (+ Events)

The applying (``apply``), the cached reads besides the watched world (``lookups``) and what a
transition tells people and the trail (``transitions``) live beside this module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from spe_api import DatasetPhase, Workspace, WorkspacePhase, permit_namespace
from spe_api import datasetvolume as dv
from spe_api.reasons import WorkspaceMessage as M
from spe_kube import ApiError, KubeClient, kind_for
from spe_kube.watch import LabelWatch

from ..audit import AuditHook
from ..children import LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGED_BY
from ..federation.lease import effective_permit, is_mirrored
from ..settings import SpeSettings
from ..workqueue import KeyedQueue, backoff
from . import checks, names
from .apply import ChildApplier, child_key
from .datasets import evaluate_datasets
from .desired import desired_children
from .gpu_idle import gpu_idle_deadline, is_gpu_idle
from .idle import idle_deadline, is_idle
from .lookups import Lookups
from .status import StatusInputs, build_status, status_changed, status_patch
from .transitions import announce, audit_transition, stop_gpu_idle, stop_idle
from .volumes import build_volume_claims
from .world import Key, World

log = logging.getLogger(__name__)

_MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
CHILD_WATCHES = (
    (kind_for("v1", "Pod"), f"{LABEL_WORKSPACE},{LABEL_COMPONENT}={names.COMPONENT_NOTEBOOK}"),
    (kind_for("apps/v1", "StatefulSet"), f"{_MANAGED},{LABEL_COMPONENT}={names.COMPONENT_NOTEBOOK}"),
    (kind_for("v1", "Service"), f"{_MANAGED},{LABEL_COMPONENT}={names.COMPONENT_NOTEBOOK}"),
    (kind_for("v1", "PersistentVolumeClaim"),
     f"{_MANAGED},{LABEL_COMPONENT} in ({names.COMPONENT_VOLUME},{names.COMPONENT_DATASET_CLAIM})"),
)
INGEST_CLAIMS = f"{dv.LABEL_DATASET},{dv.LABEL_REVISION}"
WORKSPACE = kind_for("spe.ehds.io/v1alpha1", "Workspace")
PVC = kind_for("v1", "PersistentVolumeClaim")
MAX_BACKOFF = 60.0
SLOW_RECONCILE = 1.0  # seconds: a reconcile slower than this is logged
DEADLINE_SLACK = 0.05  # seconds after a deadline, so the clock has surely passed it


class WorkspaceController:
    def __init__(self, kube: KubeClient, settings: SpeSettings, world: World | None = None,
                 audit: AuditHook | None = None, federation_contact: Callable[[], Any] | None = None):
        self.kube = kube
        # A federated node's contact with central (federation.lease): a mirrored permit counts
        # as suspended while it is lost, here as in the permit reconciler.
        self._federation_contact = federation_contact or (lambda: None)
        self.settings = settings
        self.audit = audit or AuditHook(None)
        self.world = world or World(annotations=(names.ANNOTATION_LAST_ACTIVITY, names.ANNOTATION_STOP_REASON))
        self._queue: KeyedQueue[Key] = KeyedQueue()
        self._failures: dict[Key, int] = {}
        self._children = ChildApplier(kube, self.world)
        self._lookups = Lookups(kube, settings, self.world)
        self._tasks: list[asyncio.Task] = []
        self._posting: set[asyncio.Task] = set()
        self._listed = asyncio.Event()
        self.reconciles = 0

    @property
    def listed(self) -> bool:
        """Whether the watches have listed what there is (the world is complete but for lag)."""
        return self._listed.is_set()

    # --- queue --------------------------------------------------------------------------------

    async def start(self) -> None:
        watches = [LabelWatch(self.kube, kind, selector, self.on_child_event) for kind, selector in CHILD_WATCHES]
        # The Dataset reconciler's ingest claims, in the operator's namespace only.
        watches.append(LabelWatch(self.kube, PVC, INGEST_CLAIMS, self.on_dataset_claim_event,
                                  namespace=self.settings.operator_namespace))
        for watch in watches:
            self._tasks.append(asyncio.create_task(watch.run(), name=f"workspace-watch-{watch.kind.plural}"))
        # No reconcile before every child kind was listed once: after a restart, a reconcile that
        # does not see the running server's pod yet would report it Starting (and post Events).
        self._tasks.append(asyncio.create_task(self._open_when_listed(watches), name="workspace-watches-listed"))
        for i in range(max(1, self.settings.workspace_workers)):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"workspace-worker-{i}"))
        self._tasks.append(asyncio.create_task(self._resync(), name="workspace-resync"))

    async def stop(self) -> None:
        self._queue.cancel_timers()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def on_child_event(self, type_: str, obj: dict[str, Any]) -> None:
        """A child changed (or went): record it and reconcile its workspace."""
        deleted = type_ == "DELETED"
        if obj.get("kind") == "Pod":
            key = self.world.put_pod(obj, deleted=deleted)
        else:
            key = self.world.put_child(obj, deleted=deleted)
        if key is not None:
            self.enqueue(key)
        elif obj.get("kind") == "PersistentVolumeClaim":
            # A shared dataset claim: every workspace of the namespace that mounts it.
            md = obj.get("metadata", {})
            dataset = (md.get("labels") or {}).get(names.LABEL_DATASET)
            if dataset:
                self.enqueue_all([k for k in self.world.by_dataset.get(dataset, ()) if k[0] == md.get("namespace")])

    def on_dataset_claim_event(self, type_: str, obj: dict[str, Any]) -> None:
        """An ingest claim changed (became ready, a new revision, went): its dataset's workspaces."""
        self.enqueue_all(self.world.put_dataset_claim(obj, deleted=type_ == "DELETED"))

    def enqueue(self, key: Key) -> None:
        self._queue.put(key)

    def enqueue_all(self, keys) -> None:
        self._queue.put_all(keys)

    def enqueue_after(self, key: Key, seconds: float) -> None:
        self._queue.put_after(key, seconds)

    async def _open_when_listed(self, watches: list[LabelWatch]) -> None:
        await asyncio.gather(*(w.listed.wait() for w in watches))
        self._listed.set()

    async def _worker(self) -> None:
        await self._listed.wait()
        while True:
            key = await self._queue.get()
            started = time.monotonic()
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
                elapsed = time.monotonic() - started
                if elapsed > SLOW_RECONCILE:
                    log.info("reconcile of workspace %s/%s took %.2fs", *key, elapsed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one workspace must not stop the others
                n = self._failures[key] = self._failures.get(key, 0) + 1
                delay = backoff(n, MAX_BACKOFF)
                log.warning("reconcile of workspace %s/%s failed (attempt %d, retry in %.1fs): %s",
                            *key, n, delay, exc, exc_info=not isinstance(exc, (ApiError, OSError)))
                self.enqueue_after(key, delay)
            finally:
                self._queue.done(key)

    async def _resync(self) -> None:
        """Level-based safety net: every workspace is reconciled once per interval (cheap when
        nothing changed: no API call)."""
        while True:
            await asyncio.sleep(self.settings.reconcile_interval)
            self.enqueue_all(list(self.world.workspaces))

    # --- the reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        self.reconciles += 1
        entry = self.world.workspaces.get(key)
        if entry is None or entry.model is None or entry.model.metadata.deletion_timestamp is not None:
            # Gone (or going): its children go with it through their owner references.
            self._queue.cancel_timer(key)
            return
        ws, body = entry.model, entry.body
        settings, world = self.settings, self.world
        now = datetime.now(timezone.utc)

        permit_body, permit = world.permit(ws.spec.permit)
        if permit is not None:
            permit = effective_permit(permit, is_mirrored(permit_body or {}), self._federation_contact())
        tool = world.tool(ws.spec.tool)
        datasets = {name: world.dataset(name) for name in ws.spec.datasets}
        sources: dict[str, dict[str, Any] | None] = {}
        source_errors: dict[str, str] = {}
        revisions: dict[str, int] = {}
        pod = world.pods.get(key)
        for name, ds in datasets.items():
            if ds is not None and ds.status.phase == DatasetPhase.READY:
                running = pod.dataset_revision(name) if pod is not None and not pod.deleting else None
                try:
                    sources[name], source_errors[name], revisions[name] = await self._lookups.source_volume(ds, running)
                except ApiError as exc:
                    sources[name], source_errors[name] = None, f"cannot read its volume: {exc.message}"
        verdict = evaluate_datasets(ws.spec.datasets, datasets, sources, source_errors, revisions=revisions,
                                    verifier_missing=self._lookups.verifier_missing())
        claims, storage = build_volume_claims(ws, settings)
        isolation = await self._lookups.isolation(key, ws, permit, pod)

        def gates_with(volume_error: str | None = None):
            return checks.evaluate(
                ws, permit=permit, expected_namespace=permit_namespace(ws.spec.permit), tool=tool,
                available_tools=world.tools.keys(), datasets=verdict, storage=storage,
                others=world.workspaces_of_permit(ws.spec.permit), now=now, volume_error=volume_error,
                isolation=isolation)

        gates = gates_with()
        stop_reason = ws.metadata.annotations.get(names.ANNOTATION_STOP_REASON)

        # Idle: the operator stops the server itself (spec.running=false), keeping the volumes.
        if ws.spec.running and pod is not None and pod.ready and is_idle(ws, ws.status.started_at, now):
            await stop_idle(self.kube, ws, body, now)
            return
        if (ws.spec.running and pod is not None and pod.ready
                and is_gpu_idle(ws, ws.status.started_at, now, settings.gpu_usage_max_age)):
            await stop_gpu_idle(self.kube, ws, body, now)
            return
        if ws.spec.running and stop_reason:
            await self.kube.merge_patch(WORKSPACE, ws.name, {"metadata": {"annotations": {
                names.ANNOTATION_STOP_REASON: None}}}, ws.namespace)
            stop_reason = None

        replicas = 1 if ws.spec.running and gates.ok else 0
        mounts = verdict.mounts if gates.permit.ok and gates.datasets.ok else ()
        addresses = await self._lookups.component_addresses()
        desired = desired_children(body, ws, tool=tool, mounts=mounts, claims=claims,
                                   permit_body=permit_body, settings=settings, replicas=replicas,
                                   addresses=addresses)

        # Everything at once (one round trip on the critical path); the pod waits for its claims
        # anyway. A claim that fails (quota, a changed storage class) blocks the server: it is
        # scaled back to 0 at once, and the reconcile is retried with backoff.
        volumes = [*desired.claims, *desired.dataset_volumes]
        server = [m for m in (desired.statefulset, desired.service) if m is not None]
        errors = await self._children.apply_all([*volumes, *server])
        volume_ids = {id(m) for m in volumes}
        volume_errors = [e for m, e in errors if id(m) in volume_ids]
        server_errors = [e for m, e in errors if id(m) not in volume_ids]
        if volume_errors:
            gates = gates_with("; ".join(volume_errors))
            if replicas and desired.statefulset is not None:
                replicas = 0
                desired = desired_children(body, ws, tool=tool, mounts=mounts, claims=claims,
                                           permit_body=permit_body, settings=settings, replicas=0,
                                           addresses=addresses)
                server_errors += [e for _, e in await self._children.apply_all([desired.statefulset])]
        if desired.statefulset is None:
            await self._children.scale_down_orphan(ws)
        await self._children.prune(key, {child_key(m) for m in server})

        apply_error = M.APPLY_FAILED.format(what="the server", error="; ".join(server_errors)) if server_errors else None
        url = names.server_url(ws.name, ws.namespace or "", settings.notebook_port)
        new = build_status(StatusInputs(ws=ws, gates=gates, pod=pod, url=url, now=now,
                                        stop_reason=stop_reason, apply_error=apply_error))
        if status_changed(ws.status, new):
            # The audit records of a start or a stop are written before the status says so, on
            # the reconcile's path: a start the trail cannot record does not happen.
            await audit_transition(self.audit, ws, new, gates, stop_reason, self._children.scale_down_orphan)
            result = await self.kube.merge_patch(WORKSPACE, ws.name, status_patch(new), ws.namespace,
                                                 subresource="status")
            world.put_workspace(result)
            # Events are information, not state: posted off the critical path.
            self._background(announce(self.kube, ws, body, new, gates, stop_reason, now))
        self._schedule_deadlines(key, ws, new, permit, now)
        if server_errors or volume_errors:
            raise RuntimeError("; ".join([*volume_errors, *server_errors]))

    # --- pieces -------------------------------------------------------------------------------

    def _background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    def _schedule_deadlines(self, key: Key, ws: Workspace, new, permit, now: datetime) -> None:
        """Re-run at the next instant the answer changes by the clock alone."""
        candidates = []
        if new.phase == WorkspacePhase.RUNNING:
            # (A passed GPU-idle deadline whose summary is stale stops nothing: the resync retries.)
            for deadline in (idle_deadline(ws, new.started_at), gpu_idle_deadline(ws, new.started_at)):
                if deadline is not None and deadline > now:
                    candidates.append(deadline)
        if permit is not None:
            for instant in (permit.spec.not_before, permit.spec.not_after):
                if instant is not None and instant.astimezone(timezone.utc) > now:
                    candidates.append(instant.astimezone(timezone.utc))
        if candidates:
            self.enqueue_after(key, (min(candidates) - now).total_seconds() + DEADLINE_SLACK)
        else:
            self._queue.cancel_timer(key)

