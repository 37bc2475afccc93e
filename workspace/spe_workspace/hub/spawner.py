"""``WorkspaceSpawner``: a named server is a Workspace; the operator owns its pod.

The server name is ``spe_api.hubserver.hub_server_name(namespace, workspace)``. The spawner only
asks and watches, in the pattern of a spawner that delegates to a controller:

- ``start()`` checks that the user may use the Workspace now (Active permit naming them, see
  ``catalogue``; else 403), writes the server's hub credentials into the Workspace's hub Secret
  (``secret``), sets ``spec.running: true`` and returns the Workspace's ``status.url`` once its
  ``Ready`` condition is True. A Workspace that turns Blocked, or that the operator stops
  meanwhile, fails the start with the operator's own message.
- ``progress()`` streams the Workspace's phase and Ready message while the start is pending;
  it never raises (an API error becomes a message).
- ``poll()`` maps the Workspace: running with phase Starting/Pending/Running -> still running;
  ``spec.running: false`` (a stop by the operator: expiry, suspension, revocation, idle), a
  Blocked phase or a deleted Workspace -> stopped, so the hub sees every stop. A failed API
  read is not a stop. It also carries the server's activity to the operator: the idle stop is
  the operator's (``spe.ehds.io/last-activity`` annotation, ``spec.idleTimeoutMinutes``).
- ``stop()`` sets ``spec.running: false`` and deletes the hub Secret.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from jupyterhub.spawner import Spawner
from tornado import web
from traitlets import Float, Integer, List, Unicode

from spe_api.hubserver import parse_hub_server_name
from spe_kube import ApiError

from . import catalogue
from .kube import hub_kube
from .secret import build_hub_secret, hub_secret_name

WORKSPACE = catalogue.WORKSPACE
SECRET = ("v1", "Secret")
ANNOTATION_LAST_ACTIVITY = "spe.ehds.io/last-activity"
PHASE_PROGRESS = {"Stopped": 10, "Blocked": 10, "Pending": 30, "Starting": 60, "Running": 100}


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def ready_condition(ws: dict[str, Any]) -> dict[str, Any]:
    for cond in (ws.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return {}


def describe(ws: dict[str, Any]) -> tuple[str, str]:
    """(phase, what the operator says about it) of a Workspace object."""
    phase = (ws.get("status") or {}).get("phase") or "Pending"
    return phase, ready_condition(ws).get("message") or phase


def poll_status(ws: dict[str, Any] | None) -> int | None:
    """Spawner.poll's answer for a Workspace object: None while it runs, an exit status once stopped."""
    if ws is None:
        return 2            # the Workspace is gone
    if not (ws.get("spec") or {}).get("running"):
        return 0            # stopped (by the hub or by the operator)
    status = ws.get("status") or {}
    current = (status.get("observedGeneration") or 0) >= ((ws.get("metadata") or {}).get("generation") or 0)
    if current and status.get("phase") == "Blocked":
        return 1            # wanted, but a gate fails: the Ready message says which
    return None


class WorkspaceSpawner(Spawner):
    kubeconfig = Unicode(None, allow_none=True, config=True,
                         help="Kubeconfig of the hub's identity; None: in-cluster service account or $KUBECONFIG.")
    status_interval = Float(1.0, config=True, help="Seconds between reads of the Workspace while it starts.")

    # The pod listens on every interface of its own network namespace; the proxy reaches it at
    # status.url. Nothing of the hub's environment goes to the server.
    ip = Unicode("0.0.0.0", config=True)
    port = Integer(8888, config=True, help="Port of the notebook server in workspace pods.")
    env_keep = List([], config=True)

    # -- what this server is -------------------------------------------------------------------
    @property
    def workspace_ref(self) -> tuple[str, str]:
        ref = parse_hub_server_name(self.name)
        if ref is None:
            raise web.HTTPError(404, f"'{self.name}' is not a workspace: servers are named <namespace>.<workspace>; "
                                     "start one from the list of your workspaces")
        return ref

    @property
    def kube(self):
        return hub_kube(self.kubeconfig)

    async def _who(self) -> frozenset[str]:
        auth_state = await self.user.get_auth_state() if self.user else None
        return catalogue.identities(self.user.name, auth_state)

    async def _workspace(self) -> dict[str, Any] | None:
        ns, name = self.workspace_ref
        return await self.kube.get_or_none(WORKSPACE, name, ns)

    # -- start ---------------------------------------------------------------------------------
    async def start(self) -> str:
        ns, name = self.workspace_ref
        if await catalogue.find(self.kube, await self._who(), ns, name) is None:
            raise web.HTTPError(403, f"{self.user.name} may not use workspace {name} in {ns}: it is not a workspace "
                                     "of an active data permit that names you. Ask the data access body "
                                     "or the permit's owner to add you.")
        ws = await self._workspace()
        if ws is None:
            raise web.HTTPError(404, f"workspace {name} in {ns} does not exist (any more)")
        if (ws.get("spec") or {}).get("running"):
            # Started outside this hub (kubectl, a hub whose state is gone): its server holds no
            # token of this start and serves no path of this hub, so it could never be reached
            # through it. Restart it with this start's credentials.
            self.log.info("Workspace %s/%s already runs, not started by this hub: restarting it", ns, name)
            await self._stop_and_wait(ns, name)
        await self._write_secret(ns, name, ws["metadata"]["uid"])
        await self.kube.merge_patch(WORKSPACE, name, {"spec": {"running": True}}, ns)
        self.log.info("Workspace %s/%s asked to run for %s", ns, name, self.user.name)
        while True:
            ws = await self._workspace()
            status = poll_status(ws)
            if status is not None and ws is not None and (ws.get("spec") or {}).get("running") is False:
                raise RuntimeError(f"workspace {name} was stopped while starting: {describe(ws)[1]}")
            if status is not None:
                raise RuntimeError(f"workspace {name} cannot start: {describe(ws)[1] if ws else 'it was deleted'}")
            url = (ws.get("status") or {}).get("url")
            if url and ready_condition(ws).get("status") == "True":
                return url
            await asyncio.sleep(self.status_interval)

    async def _stop_and_wait(self, ns: str, name: str, timeout: float = 300) -> None:
        await self.kube.merge_patch(WORKSPACE, name, {"spec": {"running": False}}, ns)
        deadline = asyncio.get_running_loop().time() + timeout
        while ((await self._workspace() or {}).get("status") or {}).get("phase") != "Stopped":
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"workspace {name} did not stop within {timeout:.0f} s to restart for this hub")
            await asyncio.sleep(self.status_interval)

    async def _write_secret(self, ns: str, name: str, uid: str) -> None:
        body = build_hub_secret(ns, name, uid, self.get_env())
        try:
            await self.kube.create(body)
        except ApiError as err:
            if not err.conflict:
                raise
            # A restart: the hub issued a new token; replace the whole Secret (no stale keys).
            current = await self.kube.get(SECRET, body["metadata"]["name"], ns)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.kube.request("PUT", f"/api/v1/namespaces/{ns}/secrets/{body['metadata']['name']}", body=body)

    # -- progress ------------------------------------------------------------------------------
    async def progress(self):
        last = None
        while True:
            try:
                ws = await self._workspace()
                if ws is None:
                    event = {"progress": 0, "message": "The workspace does not exist (any more)."}
                else:
                    phase, message = describe(ws)
                    event = {"progress": PHASE_PROGRESS.get(phase, 50), "message": f"{phase}: {message}"}
            except Exception as err:  # noqa: BLE001 - progress never raises
                event = {"progress": 0, "message": f"Reading the workspace failed ({type(err).__name__}); retrying."}
            if event != last:
                yield event
                last = event
            await asyncio.sleep(self.status_interval)

    # -- poll ----------------------------------------------------------------------------------
    async def poll(self) -> int | None:
        try:
            ws = await self._workspace()
        except Exception as err:  # noqa: BLE001 - an unreachable API server is not a stopped server
            self.log.warning("Could not read workspace of %s: %s", self._log_name, err)
            return None
        status = poll_status(ws)
        if status is None:
            await self._report_activity(ws)
        return status

    async def _report_activity(self, ws: dict[str, Any]) -> None:
        """The hub's last activity of this server onto the Workspace, for the operator's idle stop."""
        seen = self.orm_spawner.last_activity if self.orm_spawner is not None else None
        if seen is None:
            return
        seen = seen.replace(tzinfo=timezone.utc) if seen.tzinfo is None else seen
        known = _parse(((ws.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_LAST_ACTIVITY))
        if known is not None and known >= seen.replace(microsecond=0):
            return
        ns, name = self.workspace_ref
        try:
            await self.kube.merge_patch(WORKSPACE, name, {"metadata": {"annotations": {
                ANNOTATION_LAST_ACTIVITY: _rfc3339(seen)}}}, ns)
        except ApiError as err:
            self.log.warning("Could not record activity of %s: %s", self._log_name, err)

    # -- stop ----------------------------------------------------------------------------------
    async def stop(self, now: bool = False) -> None:
        ns, name = self.workspace_ref
        try:
            await self.kube.merge_patch(WORKSPACE, name, {"spec": {"running": False}}, ns)
        except ApiError as err:
            if not err.not_found:
                raise
        await self.kube.delete(SECRET, hub_secret_name(name), ns)
        self.log.info("Workspace %s/%s asked to stop for %s", ns, name, self.user.name)
