"""Kopf handlers of Workspaces: thin, and async (they run in the operator's event loop, where
the controller's queue lives). Watch events of Workspaces, Tools, Datasets and DataPermits feed
the controller's in-memory view and enqueue the workspaces concerned; the children's events
come through the controller's own label-selected watches (``spe_operator.workspaces.watch``).
The controller (``spe_operator.workspaces.controller``) does the one reconcile.

No handler here patches the watched objects, so Kopf adds no finalizer or progress annotation
to Workspaces. None is needed: every child is garbage-collected through its owner reference,
and nothing outside Kubernetes holds workspace state (the hub's credentials Secret is the
hub's, the audit trail is append-only by design).
"""

from __future__ import annotations

from typing import Any

import kopf

from spe_kube import KubeClient

from ..registry import REGISTRY
from ..workspaces.controller import WorkspaceController

GROUP, VERSION = "spe.ehds.io", "v1alpha1"
WORKSPACE_POOL = 32  # connections of the workspace controller's own client


def _controller(memo: kopf.Memo) -> WorkspaceController:
    return memo["workspace_controller"] if "workspace_controller" in memo else memo.workspace_controller


@kopf.on.startup(registry=REGISTRY)
async def start_workspace_controller(memo: kopf.Memo, **_: Any) -> None:
    # Its own connection pool: a burst of another reconciler's requests must not queue the
    # workspace servers' applies (both still share the API server, of course).
    kube = KubeClient(memo.kube.config, timeout=memo.settings.request_timeout, pool_size=WORKSPACE_POOL)
    controller = WorkspaceController(kube, memo.settings)
    memo.workspace_controller = controller
    await controller.start()


@kopf.on.cleanup(registry=REGISTRY)
async def stop_workspace_controller(memo: kopf.Memo, **_: Any) -> None:
    controller = memo.get("workspace_controller")
    if controller is not None:
        await controller.stop()
        await controller.kube.close()


@kopf.on.event(GROUP, VERSION, "workspaces", registry=REGISTRY)
async def workspace_event(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    md = body.get("metadata", {})
    if event.get("type") == "DELETED":
        ctl.world.forget_workspace(md.get("namespace", ""), md.get("name", ""))
        ctl.enqueue((md.get("namespace", ""), md.get("name", "")))
    elif ctl.world.put_workspace(body):
        ctl.enqueue((md.get("namespace", ""), md.get("name", "")))


@kopf.on.event(GROUP, VERSION, "tools", registry=REGISTRY)
async def workspaces_on_tool(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    name = body["metadata"]["name"]
    keys = ctl.world.forget_tool(name) if event.get("type") == "DELETED" else ctl.world.put_tool(body)
    ctl.enqueue_all(keys)


@kopf.on.event(GROUP, VERSION, "datasets", registry=REGISTRY)
async def workspaces_on_dataset(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    name = body["metadata"]["name"]
    keys = ctl.world.forget_dataset(name) if event.get("type") == "DELETED" else ctl.world.put_dataset(body)
    ctl.enqueue_all(keys)


@kopf.on.event(GROUP, VERSION, "datapermits", registry=REGISTRY)
async def workspaces_on_permit(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    name = body["metadata"]["name"]
    keys = ctl.world.forget_permit(name) if event.get("type") == "DELETED" else ctl.world.put_permit(body)
    ctl.enqueue_all(keys)
