"""The one reconcile path of Workspaces, and the work queue that drives it.

Create, update, resume (the initial listing), child events (pods, StatefulSet, Service,
claims: label-selected watches, see ``watch``), changes of the referenced Tool / Dataset / DataPermit, deadlines (idle timeout, the
permit's notBefore/notAfter) and a periodic resync all *enqueue* a workspace; workers take
keys off the queue, at most one reconcile per workspace at a time (a key enqueued while it is
being reconciled runs once more afterwards). A reconcile is level-based and idempotent:

    desired children (pure builders) -> server-side apply -> prune -> status (+ Events)

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
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from spe_api import DatasetPhase, Reason, Workspace, WorkspacePhase, permit_namespace
from spe_api import datasetvolume as dv
from spe_api.reasons import WorkspaceMessage as M
from spe_kube import ApiError, KubeClient, kind_for
from spe_kube.events import NORMAL, WARNING, post_event

from ..audit import AuditHook, AuditUnavailable
from ..children import LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_OWNER_UID, LABEL_WORKSPACE, MANAGED_BY
from ..federation.lease import effective_permit, is_mirrored
from ..permits.network import build_network_policies
from ..permits.quota import QUOTA_NAME
from ..settings import SpeSettings
from ..workqueue import KeyedQueue, backoff
from . import checks, names
from .datasets import evaluate_datasets, select_dataset_claim, volume_bound_to
from .desired import desired_children
from .gpu_idle import gpu_idle_deadline, is_gpu_idle
from .idle import idle_deadline, is_idle, last_activity
from .statefulset import ServiceAddress, service_hostnames
from .status import StatusInputs, build_status, status_changed, status_patch
from .volumes import build_volume_claims
from .watch import ChildWatch
from .world import Key, World, spec_token

log = logging.getLogger(__name__)

WATCHED_KINDS = frozenset({"StatefulSet", "Service", "PersistentVolumeClaim"})
_MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
CHILD_WATCHES = (
    (kind_for("v1", "Pod"), f"{LABEL_WORKSPACE},{LABEL_COMPONENT}={names.COMPONENT_NOTEBOOK}"),
    (kind_for("apps/v1", "StatefulSet"), f"{_MANAGED},{LABEL_COMPONENT}={names.COMPONENT_NOTEBOOK}"),
    (kind_for("v1", "Service"), f"{_MANAGED},{LABEL_COMPONENT}={names.COMPONENT_NOTEBOOK}"),
    (kind_for("v1", "PersistentVolumeClaim"),
     f"{_MANAGED},{LABEL_COMPONENT} in ({names.COMPONENT_VOLUME},{names.COMPONENT_DATASET_CLAIM})"),
)
INGEST_CLAIMS = f"{dv.LABEL_DATASET},{dv.LABEL_REVISION}"
PRUNED_KINDS = frozenset({"StatefulSet", "Service"})  # claims hold research data: never pruned
WORKSPACE = kind_for("spe.ehds.io/v1alpha1", "Workspace")
STATEFULSET = kind_for("apps/v1", "StatefulSet")
PV = kind_for("v1", "PersistentVolume")
PVC = kind_for("v1", "PersistentVolumeClaim")
SERVICE = kind_for("v1", "Service")
NETWORK_POLICY = kind_for("networking.k8s.io/v1", "NetworkPolicy")
RESOURCE_QUOTA = kind_for("v1", "ResourceQuota")
MAX_BACKOFF = 60.0
SLOW_RECONCILE = 1.0  # seconds: a reconcile slower than this is logged
DEADLINE_SLACK = 0.05  # seconds after a deadline, so the clock has surely passed it
ISOLATION_TTL = 30.0  # seconds a complete isolation answer serves a namespace's starting servers


def _digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _child_key(manifest: dict[str, Any]) -> tuple[str, str, str]:
    md = manifest["metadata"]
    return (manifest["kind"], md.get("namespace") or "", md["name"])


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
        self._applied: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._sources: dict[tuple[str, str], tuple[dict[str, Any] | None, str]] = {}
        self._isolated: dict[Key, checks.Isolation] = {}
        self._namespace_isolation: dict[tuple[str, str], tuple[float, checks.Isolation]] = {}
        self._addresses: tuple[float, tuple[ServiceAddress, ...]] | None = None
        self._tasks: list[asyncio.Task] = []
        self._posting: set[asyncio.Task] = set()
        self._listed = asyncio.Event()
        self.reconciles = 0

    # --- queue --------------------------------------------------------------------------------

    async def start(self) -> None:
        watches = [ChildWatch(self.kube, kind, selector, self.on_child_event) for kind, selector in CHILD_WATCHES]
        # The Dataset reconciler's ingest claims, in the operator's namespace only.
        watches.append(ChildWatch(self.kube, PVC, INGEST_CLAIMS, self.on_dataset_claim_event,
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

    async def _open_when_listed(self, watches: list[ChildWatch]) -> None:
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
                    sources[name], source_errors[name], revisions[name] = await self._source_volume(ds, running)
                except ApiError as exc:
                    sources[name], source_errors[name] = None, f"cannot read its volume: {exc.message}"
        verdict = evaluate_datasets(ws.spec.datasets, datasets, sources, source_errors, revisions=revisions,
                                    verifier_missing=self._verifier_missing())
        claims, storage = build_volume_claims(ws, settings)
        isolation = await self._isolation(key, ws, permit, pod)

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
            await self._stop_idle(ws, body, now)
            return
        if (ws.spec.running and pod is not None and pod.ready
                and is_gpu_idle(ws, ws.status.started_at, now, settings.gpu_usage_max_age)):
            await self._stop_gpu_idle(ws, body, now)
            return
        if ws.spec.running and stop_reason:
            await self.kube.merge_patch(WORKSPACE, ws.name, {"metadata": {"annotations": {
                names.ANNOTATION_STOP_REASON: None}}}, ws.namespace)
            stop_reason = None

        replicas = 1 if ws.spec.running and gates.ok else 0
        mounts = verdict.mounts if gates.permit.ok and gates.datasets.ok else ()
        addresses = await self._component_addresses()
        desired = desired_children(body, ws, tool=tool, mounts=mounts, claims=claims,
                                   permit_body=permit_body, settings=settings, replicas=replicas,
                                   addresses=addresses)

        # Everything at once (one round trip on the critical path); the pod waits for its claims
        # anyway. A claim that fails (quota, a changed storage class) blocks the server: it is
        # scaled back to 0 at once, and the reconcile is retried with backoff.
        volumes = [*desired.claims, *desired.dataset_volumes]
        server = [m for m in (desired.statefulset, desired.service) if m is not None]
        errors = await self._apply_all([*volumes, *server])
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
                server_errors += [e for _, e in await self._apply_all([desired.statefulset])]
        if desired.statefulset is None:
            await self._scale_down_orphan(ws)
        await self._prune(key, {_child_key(m) for m in server})

        apply_error = M.APPLY_FAILED.format(what="the server", error="; ".join(server_errors)) if server_errors else None
        url = names.server_url(ws.name, ws.namespace or "", settings.notebook_port)
        new = build_status(StatusInputs(ws=ws, gates=gates, pod=pod, url=url, now=now,
                                        stop_reason=stop_reason, apply_error=apply_error))
        if status_changed(ws.status, new):
            # The audit records of a start or a stop are written before the status says so, on
            # the reconcile's path: a start the trail cannot record does not happen.
            await self._audit_transition(ws, new, gates, stop_reason)
            result = await self.kube.merge_patch(WORKSPACE, ws.name, status_patch(new), ws.namespace,
                                                 subresource="status")
            world.put_workspace(result)
            # Events are information, not state: posted off the critical path.
            self._background(self._announce(ws, body, new, gates, stop_reason, now))
        self._schedule_deadlines(key, ws, new, permit, now)
        if server_errors or volume_errors:
            raise RuntimeError("; ".join([*volume_errors, *server_errors]))

    # --- pieces -------------------------------------------------------------------------------

    def _background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _apply_all(self, manifests: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """Apply concurrently; (manifest, error) for each that failed."""
        results = await asyncio.gather(*(self._apply(m) for m in manifests), return_exceptions=True)
        errors = []
        for manifest, result in zip(manifests, results):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                kind, _, name = _child_key(manifest)
                errors.append((manifest, f"{kind} {name}: {getattr(result, 'message', result)}"))
        return errors

    async def _apply(self, manifest: dict[str, Any]) -> None:
        ck = _child_key(manifest)
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

    async def _scale_down_orphan(self, ws: Workspace) -> None:
        """Without its Tool the StatefulSet cannot be rebuilt; make sure it runs nothing."""
        if self.world.observed_token("StatefulSet", ws.namespace, names.statefulset_name(ws.name)) is None:
            return
        try:
            await self.kube.merge_patch(STATEFULSET, names.statefulset_name(ws.name), {"spec": {"replicas": 0}},
                                        ws.namespace)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _prune(self, key: Key, wanted: set[tuple[str, str, str]]) -> None:
        """Delete server children (found by their workspace label) that are no longer wanted."""
        stale = [ck for ck in self.world.children_of.get(key, ()) if ck[0] in PRUNED_KINDS and ck not in wanted]
        for kind, namespace, name in stale:
            api_version = "apps/v1" if kind == "StatefulSet" else "v1"
            await self.kube.delete(kind_for(api_version, kind), name, namespace)

    async def _component_addresses(self) -> tuple[ServiceAddress, ...]:
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

    async def _isolation(self, key: Key, ws: Workspace, permit, pod) -> checks.Isolation | None:
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

    async def _source_volume(self, ds, keep: int | None = None) -> tuple[dict[str, Any] | None, str, int]:
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

    def _verifier_missing(self) -> tuple[str, str] | None:
        """What the verification of datasets before use lacks in the settings (None: nothing)."""
        if not self.settings.ingest_image:
            return "ingest image to verify them with", "ingest_image / SPE_INGEST_IMAGE"
        if not self.settings.dataset_public_key:
            return "public key of the site's dataset signing key", "dataset_public_key / SPE_DATASET_PUBLIC_KEY"
        return None

    async def _stop_idle(self, ws: Workspace, body: dict[str, Any], now: datetime) -> None:
        last = last_activity(ws, ws.status.started_at)
        await self.kube.merge_patch(WORKSPACE, ws.name, {
            "metadata": {"annotations": {names.ANNOTATION_STOP_REASON: Reason.IDLE_TIMEOUT}},
            "spec": {"running": False}}, ws.namespace)
        await post_event(self.kube, body, type_=NORMAL, reason=Reason.IDLE_TIMEOUT, message=M.EVENT_IDLE.format(
            minutes=ws.spec.idle_timeout_minutes, last=last.isoformat() if last else "never"), now=now)

    async def _stop_gpu_idle(self, ws: Workspace, body: dict[str, Any], now: datetime) -> None:
        usage = ws.status.gpu_usage
        await self.kube.merge_patch(WORKSPACE, ws.name, {
            "metadata": {"annotations": {names.ANNOTATION_STOP_REASON: Reason.GPU_IDLE}},
            "spec": {"running": False}}, ws.namespace)
        await post_event(self.kube, body, type_=NORMAL, reason=Reason.GPU_IDLE, message=M.EVENT_GPU_IDLE.format(
            threshold=usage.threshold_percent, since=usage.idle_since.isoformat(),
            minutes=ws.spec.idle_timeout_minutes), now=now)

    async def _audit_transition(self, ws: Workspace, new, gates, stop_reason: str | None) -> None:
        """workspace.started and dataset.mounted when the server becomes Running (fail closed:
        if the trail refuses them, the server is scaled back to 0 and the reconcile fails, so the
        hub never sees it Running); workspace.stopped when a Running server stops."""
        old_phase, phase = ws.status.phase, new.phase
        if old_phase == phase:
            return
        target = f"Workspace/{ws.namespace}/{ws.name}"
        if phase == WorkspacePhase.RUNNING:
            try:
                await self.audit.record("workspace.started", target=target, permit=ws.spec.permit,
                                        details={"node": new.node, "gpus": ws.gpu_count, "tool": ws.spec.tool,
                                                 "members": list(ws.spec.members)})
                for dataset in ws.spec.datasets:
                    await self.audit.record("dataset.mounted", target=target, permit=ws.spec.permit,
                                            dataset=dataset, details={"path": f"/data/{dataset}", "readOnly": True})
            except AuditUnavailable:
                await self._scale_down_orphan(ws)
                raise
        elif phase == WorkspacePhase.STOPPED and old_phase == WorkspacePhase.RUNNING:
            await self.audit.record("workspace.stopped", target=target, permit=ws.spec.permit,
                                    details={"why": stop_why(stop_reason, gates)})

    async def _announce(self, ws: Workspace, body: dict[str, Any], new, gates, stop_reason: str | None,
                        now: datetime) -> None:
        """Events for the transitions a person should see."""
        old_phase, phase = ws.status.phase, new.phase
        if old_phase == phase:
            return
        if phase == WorkspacePhase.RUNNING:
            gpus = f" with {ws.gpu_count} x {ws.gpu_model}" if ws.gpu_count else ""
            await post_event(self.kube, body, type_=NORMAL, reason="Started",
                             message=M.EVENT_STARTED.format(node=new.node, gpus=gpus, url=new.url), now=now)
        elif phase == WorkspacePhase.STOPPED and old_phase is not None:
            await post_event(self.kube, body, type_=NORMAL, reason=Reason.STOPPED,
                             message=M.EVENT_STOPPED.format(why=stop_why(stop_reason, gates)), now=now)
        elif phase == WorkspacePhase.BLOCKED:
            failure = gates.first_failure
            await post_event(self.kube, body, type_=WARNING, reason=failure.reason if failure else Reason.BLOCKED,
                             message=new.message or "", now=now)
        elif phase == WorkspacePhase.PENDING:
            await post_event(self.kube, body, type_=WARNING, reason=Reason.UNSCHEDULABLE,
                             message=new.message or "", now=now)

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


def stop_why(stop_reason: str | None, gates) -> str:
    """Why a server stopped, in the words of its Event and its audit record."""
    if stop_reason == Reason.IDLE_TIMEOUT:
        return "idle timeout"
    if stop_reason == Reason.GPU_IDLE:
        return "GPU idle"
    if not gates.permit.ok:
        return gates.permit.message.rstrip(".")
    return "spec.running was set to false"
