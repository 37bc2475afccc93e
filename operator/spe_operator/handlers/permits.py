"""DataPermit reconciler: Kopf wiring plus the one level-based reconcile.

Every trigger ends in the same place, ``reconcile_permit(name)``, run by a per-permit worker
(``workqueue.ReconcileQueue``), never two at once for one permit:

- create, update (a new ``metadata.generation``) and resume (the initial listing when the
  operator starts): ``@kopf.on.event`` on DataPermits kicks the permit;
- child drift: an event on any owned Namespace, ResourceQuota, LimitRange, NetworkPolicy or
  RoleBinding (edited or deleted by someone) kicks its permit, found by the
  ``spe.ehds.io/permit`` label;
- workspaces: a Workspace appearing, going, or changing ``spec.running`` kicks its permit
  (status lists them; an expired permit stops one that someone starts again);
- time: each reconcile returns the seconds to the next validity boundary (notBefore, notAfter),
  capped at ``settings.reconcile_interval``, and the worker runs it again exactly then.

Kubernetes children go by owner references and the garbage collector (the namespace, and with
it everything in it). The permit's group in Keycloak is state outside Kubernetes: while an
identity provider is configured, the reconcile keeps the group in sync (``identity``) and a
finalizer on the permit, and a deleted permit's reconcile removes the group, then the finalizer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime, timezone
from functools import partial
from typing import Any

import kopf
from pydantic import ValidationError

from spe_api import (GROUP, VERSION, ConditionType, DataPermit, DataPermitStatus, Message, Reason, Workspace,
                     permit_namespace)
from spe_api.reasons import permit_phase_reason
from spe_kube import ApiError, KubeClient, kind_for
from spe_kube.events import NORMAL, WARNING, post_event

from ..children import LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_PERMIT, MANAGED_BY, prune_children
from ..permits import CHILD_KINDS, COMPONENTS, desired_children
from ..audit import AuditHook
from ..federation.lease import effective_permit, is_mirrored
from ..permits.namespace import namespace_refusal
from ..permits.phase import PhaseInfo, evaluate, seconds_until
from ..workqueue import ReconcileQueue
from ..permits.status import (ChildrenResult, Transition, build_status, permit_active_condition, stop_patch,
                              transitions, workspace_actions)
from ..identity.reconcile import make_identity, with_identity
from ..registry import REGISTRY
from ..settings import SpeSettings
from ..workspaces.world import listed_world

log = logging.getLogger(__name__)

PERMIT = kind_for(f"{GROUP}/{VERSION}", "DataPermit")
WORKSPACE = kind_for(f"{GROUP}/{VERSION}", "Workspace")
NAMESPACE = kind_for("v1", "Namespace")
# Status writes of this reconciler (the permit's status; the PermitActive condition of a
# Workspace, where server-side apply on the conditions list-map owns only that one entry).
STATUS_MANAGER = "spe-operator-permits"
BOUNDARY_SLACK = 0.002  # wake just after the boundary, never just before it
TERMINATING_RETRY = 1.0
PERMIT_COMPONENTS = frozenset(COMPONENTS.values())


# --- Kopf wiring ------------------------------------------------------------------------------

@kopf.on.startup(registry=REGISTRY)
async def start_permit_queue(memo: kopf.Memo, **_: Any) -> None:
    settings: SpeSettings = memo.settings
    memo.permit_queue = ReconcileQueue(partial(reconcile_permit, memo), interval=settings.reconcile_interval,
                                       name="permit-reconcile")
    memo.permit_workspaces = {}
    memo.permit_children = {}  # name -> (digest of the desired children, loop time of the last apply)
    memo.permit_drift = set()  # permits with a child event since their children were last applied
    memo.permit_child_seen = {}  # (plural, namespace, name) -> child_fingerprint of its last event
    memo.permit_applying = {}  # permit -> {child key: fingerprint} of child events during its apply
    memo.permit_identity = make_identity(settings, PERMIT)


@kopf.on.cleanup(registry=REGISTRY)
async def stop_permit_queue(memo: kopf.Memo, **_: Any) -> None:
    queue = memo.get("permit_queue")
    if queue is not None:
        await queue.close()
    identity = memo.get("permit_identity")
    if identity is not None:
        await identity.close()


@kopf.on.event(GROUP, VERSION, "datapermits", registry=REGISTRY)
async def permit_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:  # noqa: A002
    name = body["metadata"]["name"]
    if type == "DELETED":
        _forget(memo, name)
        return
    if body["metadata"].get("deletionTimestamp"):
        memo.permit_queue.kick(name)  # its finalizer's work
        return
    memo.permit_queue.kick_if_changed(name, body["metadata"].get("generation"))


def _is_permit_child(labels: kopf.Labels, **_: Any) -> bool:
    return labels.get(LABEL_COMPONENT) in PERMIT_COMPONENTS


def child_fingerprint(body: Any) -> str:
    """What of a child can drift: everything but its status and the server's bookkeeping.

    A ResourceQuota's ``status.used`` changes with every claim and pod in the namespace; without
    this, each of those would re-run the permit's reconcile for nothing.
    """
    md = body.get("metadata") or {}
    content = {k: v for k, v in body.items() if k not in ("status", "metadata")}
    content["labels"] = md.get("labels") or {}
    content["annotations"] = md.get("annotations") or {}
    content["ownerReferences"] = md.get("ownerReferences") or []
    content["deleting"] = md.get("deletionTimestamp") is not None
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _child_key(plural: str, body: Any) -> tuple[str, str | None, str]:
    md = body.get("metadata") or {}
    return (plural, md.get("namespace"), md.get("name", ""))


def _mark_drifted(memo: kopf.Memo, permit: str) -> None:
    """A child of ``permit`` drifted: its next reconcile re-applies every child, and comes now."""
    memo.permit_drift.add(permit)
    memo.permit_queue.kick(permit)


def child_event_is_drift(seen: dict, plural: str, type_: str | None, body: Any) -> bool:
    """Record a child's watch event in ``seen``; True when it shows drift (re-apply the permit).

    ``seen`` also holds what the reconciler's own applies returned (``remember_applied``), so the
    event of our own apply -- the ADDED of every child of a new permit, the MODIFIED of a repair --
    is not mistaken for drift (which would re-apply every child once more). The initial listing
    (type None) needs no kick either: the permits' own listing does that.
    """
    key = _child_key(plural, body)
    if type_ == "DELETED":
        seen.pop(key, None)
        return True
    fingerprint = child_fingerprint(body)
    unchanged = seen.get(key) == fingerprint
    seen[key] = fingerprint
    return type_ is not None and not unchanged


def drifted_during_apply(seen: dict, during: dict) -> bool:
    """Whether a child event that came while the permit's children were being applied shows
    something other than what the applies returned. The watch often delivers the ADDED of the
    namespace before the other applies answer: judged at once, it looked like drift, and every
    child of every new permit was applied twice (bench/operator, 1,000 permits)."""
    drift = False
    for key, fingerprint in during.items():
        if seen.get(key) != fingerprint:
            seen[key] = fingerprint
            drift = True
    return drift


def remember_applied(seen: dict, applied: list[dict[str, Any]]) -> None:
    """Record the children as the API server returned them from our apply (see above)."""
    for obj in applied:
        seen[_child_key(kind_for(obj["apiVersion"], obj["kind"]).plural, obj)] = child_fingerprint(obj)


def on_child_event(memo: Any, plural: str, type_: str | None, permit: str, body: Any) -> None:
    """A permit's child changed: re-apply the permit's children if that is drift. An event that
    comes while the permit's children are being applied is most likely that apply's own: it is
    judged once the apply's answers are in (``drifted_during_apply``)."""
    during = memo.permit_applying.get(permit)
    if during is not None and type_ in ("ADDED", "MODIFIED"):
        during[_child_key(plural, body)] = child_fingerprint(body)
        return
    if not child_event_is_drift(memo.permit_child_seen, plural, type_, body):
        return
    _mark_drifted(memo, permit)


def _register_child_watch(api_version: str, kind: str) -> None:
    rk = kind_for(api_version, kind)
    group, _, version = api_version.rpartition("/")

    @kopf.on.event(group, version, rk.plural, registry=REGISTRY, id=f"permit-child-{rk.plural}",
                   labels={LABEL_PERMIT: kopf.PRESENT, LABEL_MANAGED_BY: MANAGED_BY}, when=_is_permit_child)
    async def child_event(type: str | None, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo,  # noqa: A002
                          **_: Any) -> None:
        on_child_event(memo, rk.plural, type, labels[LABEL_PERMIT], body)


for _api_version, _kind in CHILD_KINDS:
    _register_child_watch(_api_version, _kind)


@kopf.on.event(GROUP, VERSION, "workspaces", registry=REGISTRY, id="permit-workspaces")
async def workspace_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:  # noqa: A002
    md, spec = body["metadata"], body.get("spec") or {}
    key = (md.get("namespace"), md["name"])
    permit = spec.get("permit")
    cache: dict = memo.permit_workspaces
    if type == "DELETED":
        cache.pop(key, None)
    else:
        fingerprint = _fingerprint(permit, spec.get("running"), md.get("deletionTimestamp") is not None)
        if cache.get(key) == fingerprint:
            return
        cache[key] = fingerprint
    if permit:
        memo.permit_queue.kick(permit)


# --- the reconcile ----------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(timezone.utc)


async def reconcile_permit(memo: kopf.Memo, name: str) -> float | None:
    """Bring one permit's world to what its spec implies now; return seconds until the next run."""
    kube: KubeClient = memo.kube
    settings: SpeSettings = memo.settings
    body = await kube.get_or_none(PERMIT, name)
    if body is None:
        _forget(memo, name)
        return None
    if body["metadata"].get("deletionTimestamp"):
        # going: the garbage collector removes the children; the group is ours to remove
        done = await memo.permit_identity.finalize(kube, body)
        if done.note:
            await post_event(kube, body, type_=WARNING, reason=done.reason, message=done.note)
        return done.retry
    # A permit mirrored from central is suspended while the node has lost contact (the lease).
    permit = effective_permit(DataPermit.from_manifest(body), is_mirrored(body), memo.get("federation_contact"))
    namespace = permit_namespace(name)
    now = _now()
    info = evaluate(permit, now)
    recorded = DataPermitStatus.model_validate(body.get("status") or {})
    workspaces = await _workspaces(memo, kube, namespace, info)
    actions = workspace_actions(info, workspaces)
    log.debug("DataPermit %s: phase %s (recorded %s), %d workspace(s), %d to stop",
              name, info.phase.value, recorded.phase, len(workspaces), len(actions.stop))

    # 1. What a phase change must do at once, in this order: stop every running workspace; say
    #    why (Events, audit records -- before the status, so a reconcile interrupted after the
    #    status write cannot lose them: at least once); publish the phase (with the namespace's
    #    condition as last recorded) for the hub, the gateway and people to read. A permit that
    #    reads Expired has no running workspace.
    results = await asyncio.gather(*(_stop(kube, ws) for ws in actions.stop))
    stopped = [ws for ws, ok in zip(actions.stop, results) if ok]
    await asyncio.gather(_explain_stops(kube, memo.audit, permit, info, stopped, actions.mark),
                         *(_report(kube, memo.audit, permit, t) for t in transitions(permit, info, namespace)))
    last_children = recorded.condition(ConditionType.NAMESPACE_READY)
    if info.phase != recorded.phase and last_children is not None:
        recorded = await _write_status(kube, permit, build_status(
            permit, info, ChildrenResult(last_children.status.value == "True", last_children.reason,
                                         last_children.message), workspaces, namespace, now))

    # 2. The namespace and everything in it.
    children, retry = await _sync_children(memo, permit, settings, info, namespace)

    # 3. The permit's group in the identity provider (never raises: a failure is a condition
    #    and a retry with backoff, which never postpones a validity boundary).
    identity, identity_retry = await memo.permit_identity.sync(kube, body, permit, info.phase)

    # 4. The status.
    status = build_status(permit.model_copy(update={"status": recorded}), info, children, workspaces, namespace, now)
    if identity is not None:
        status = with_identity(status, identity, permit.generation, now)
    if status.to_dict() != recorded.to_dict():
        await _write_status(kube, permit, status)
    memo.permit_queue.observed(name, permit.generation)
    if retry is not None:
        return retry
    wait = seconds_until(info.next_boundary, _now())
    wait = None if wait is None else wait + BOUNDARY_SLACK
    return min((w for w in (wait, identity_retry) if w is not None), default=None)


def _forget(memo: kopf.Memo, name: str) -> None:
    memo.permit_queue.forget(name)
    memo.permit_identity.forget(name)
    memo.permit_children.pop(name, None)
    memo.permit_drift.discard(name)


async def _write_status(kube: KubeClient, permit: DataPermit, status: DataPermitStatus) -> DataPermitStatus:
    await kube.apply_status({"apiVersion": permit.api_version, "kind": permit.kind,
                             "metadata": {"name": permit.name}, "status": status.to_dict()},
                            field_manager=STATUS_MANAGER)
    return status


async def _workspaces(memo: kopf.Memo, kube: KubeClient, namespace: str, info: PhaseInfo) -> list[Workspace]:
    """The permit namespace's Workspaces. While the phase lets them run, only the status's list
    and count read them, and the workspace reconciler's view answers (a LIST per permit
    reconcile was 1.2 requests per workspace at 5,000). When the phase stops workspaces, the API
    server's LIST: one created a moment ago must not escape the stop for a watch's lag."""
    world = listed_world(memo)
    if world is not None and not info.stops_workspaces:
        held = world.workspaces_in(namespace)
        if _agrees(memo.get("permit_workspaces") or {}, namespace, held):
            return held
    return await _list_workspaces(kube, namespace)


def _agrees(seen: dict, namespace: str, held: list[Workspace]) -> bool:
    """Whether the world holds what this reconciler's own watch last saw in the namespace (the
    two watches deliver the same event at slightly different times; a reconcile kicked by a new
    Workspace must not list without it)."""
    mine = {name: fp for (ns, name), fp in seen.items() if ns == namespace}
    return mine == {ws.name: _fingerprint(ws.spec.permit, ws.spec.running, ws.metadata.deletion_timestamp is not None)
                    for ws in held}


def _fingerprint(permit: str | None, running: Any, deleting: bool) -> tuple:
    """What of a Workspace this reconciler reacts to (its permit, whether it runs, whether it goes)."""
    return permit, bool(running), deleting


async def _list_workspaces(kube: KubeClient, namespace: str) -> list[Workspace]:
    out = []
    for item in await kube.list(WORKSPACE, namespace):
        try:
            out.append(Workspace.from_manifest(item))
        except ValidationError as exc:  # the schema normally prevents this; never block the permit
            log.warning("Workspace %s/%s does not parse, ignored: %s", namespace, item["metadata"]["name"], exc)
    return out


async def _stop(kube: KubeClient, ws: Workspace) -> bool:
    """spec.running=false (the admission webhook always lets a pure stop through)."""
    try:
        await kube.merge_patch(WORKSPACE, ws.name, stop_patch(), ws.namespace)
    except ApiError as exc:
        if exc.not_found:
            return False
        raise
    return True


async def _explain_stops(kube: KubeClient, audit: AuditHook, permit: DataPermit, info: PhaseInfo,
                         stopped: list[Workspace], mark: list[Workspace]) -> None:
    reason = _ws_reason(info)
    message = Message.WORKSPACE_STOPPED_BY_PERMIT.format(detail=info.message)

    async def condition(ws: Workspace) -> None:
        try:
            await kube.apply_status(permit_active_condition(ws, info, _now()), field_manager=STATUS_MANAGER)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def announce(ws: Workspace) -> None:
        await post_event(kube, _ref(ws), type_=WARNING, reason=reason, message=message)
        await audit.record("workspace.stopped", target=f"Workspace/{ws.namespace}/{ws.name}", permit=permit.name,
                           details={"reason": reason, "by": "permit-reconciler"})

    await asyncio.gather(*(condition(ws) for ws in mark), *(announce(ws) for ws in stopped))
    if stopped:
        names = ", ".join(sorted(ws.name for ws in stopped))
        await post_event(kube, _permit_ref(permit), type_=WARNING, reason=info.reason,
                         message=Message.PERMIT_STOPPED_WORKSPACES.format(
                             count=len(stopped), namespace=stopped[0].namespace, names=names, detail=info.message))


def _ws_reason(info: PhaseInfo) -> str:
    return permit_phase_reason(info.phase.value)


async def _sync_children(memo: kopf.Memo, permit: DataPermit, settings: SpeSettings, info: PhaseInfo,
                         namespace: str) -> tuple[ChildrenResult, float | None]:
    """Apply and prune the children -- unless they are what was last applied, no child event
    (drift) came since, and the last full apply is younger than ``children_resync_interval``.

    Every reconcile (at least each ``reconcile_interval``) re-evaluates the phase and status; the
    children are re-applied only when they changed or drifted: at thousands of permits, applying
    seven unchanged objects per permit per minute was most of the operator's API traffic."""
    desired = desired_children(permit, settings, info.phase)
    digest = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()
    loop = asyncio.get_running_loop()
    drifted = permit.name in memo.permit_drift
    memo.permit_drift.discard(permit.name)
    last = memo.permit_children.get(permit.name)
    if (last is not None and last[0] == digest and not drifted
            and loop.time() - last[1] < settings.children_resync_interval):
        return ChildrenResult(True), None
    during = memo.permit_applying[permit.name] = {}
    try:
        result, retry = await _apply_children(memo.kube, permit, desired, namespace, settings,
                                              memo.permit_child_seen)
    finally:
        memo.permit_applying.pop(permit.name, None)
    if drifted_during_apply(memo.permit_child_seen, during) and result.ok:
        _mark_drifted(memo, permit.name)
    if result.ok:
        memo.permit_children[permit.name] = (digest, loop.time())
    else:
        memo.permit_children.pop(permit.name, None)
    return result, retry


async def _apply_children(kube: KubeClient, permit: DataPermit, desired: list[dict[str, Any]],
                          namespace: str, settings: SpeSettings,
                          seen: dict | None = None) -> tuple[ChildrenResult, float | None]:
    try:
        existing = await kube.get_or_none(NAMESPACE, namespace)
        if existing is not None and (existing.get("status") or {}).get("phase") == "Terminating":
            return ChildrenResult(False, Reason.NAMESPACE_TERMINATING,
                                  Message.PERMIT_NAMESPACE_TERMINATING.format(namespace=namespace)), TERMINATING_RETRY
        refusal = namespace_refusal(permit, settings, existing)
        if refusal is not None:  # never adopted, never changed: retried at the periodic interval
            log.warning("DataPermit %s: %s", permit.name, refusal[1])
            return ChildrenResult(False, *refusal), settings.reconcile_interval
        ns = await kube.apply(desired[0])
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return ChildrenResult(False, Reason.NAMESPACE_TERMINATING,
                                  Message.PERMIT_NAMESPACE_TERMINATING.format(namespace=namespace)), TERMINATING_RETRY
        applied = await asyncio.gather(*(kube.apply(child) for child in desired[1:]))
        if seen is not None:
            remember_applied(seen, [ns, *applied])
        await prune_children(kube, permit.metadata.uid or "", desired, CHILD_KINDS[1:], namespace=namespace)
    except ApiError as exc:
        log.warning("DataPermit %s: children not applied: %s", permit.name, exc)
        result = ChildrenResult(False, Reason.FAILED,
                                Message.PERMIT_NAMESPACE_FAILED.format(namespace=namespace, error=exc.message))
        return result, None if exc.status >= 500 else 2.0
    return ChildrenResult(True), None


# --- events and audit ---------------------------------------------------------------------------

def _permit_ref(permit: DataPermit) -> dict[str, Any]:
    return {"apiVersion": permit.api_version, "kind": permit.kind, "name": permit.name, "uid": permit.metadata.uid}


def _ref(ws: Workspace) -> dict[str, Any]:
    return {"apiVersion": ws.api_version, "kind": ws.kind, "name": ws.name, "namespace": ws.namespace,
            "uid": ws.metadata.uid}


async def _report(kube: KubeClient, audit: AuditHook, permit: DataPermit, transition: Transition) -> None:
    await audit.record(transition.act, target=f"DataPermit/{permit.name}", permit=permit.name,
                       details={"permitId": permit.spec.permit_id, "reason": transition.reason,
                                "generation": permit.generation})
    await post_event(kube, _permit_ref(permit), type_=WARNING if transition.warning else NORMAL,
                     reason=transition.reason, message=transition.message)

