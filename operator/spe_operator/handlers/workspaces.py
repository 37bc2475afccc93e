"""Kopf handlers of Workspaces: thin, and async (they run in the operator's event loop, where
the controller's queue lives). Watch events of Workspaces, Tools, Datasets and DataPermits feed
the controller's in-memory view and enqueue the workspaces concerned; the children's events
come through the controller's own label-selected watches (``spe_kube.watch``).
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
    controller = WorkspaceController(kube, memo.settings, audit=memo.audit,
                                     federation_contact=lambda: memo.get("federation_contact"))
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


# Tools, Datasets and DataPermits feed the view through Kopf *indexes*: Kopf lists every indexed
# kind before it delivers any event, so after an operator restart no Workspace is reconciled
# against a half-filled view (which would find "no such permit" and stop a running server).
# The index itself stays empty (None is not indexed); deletions come through the event handlers.

@kopf.index(GROUP, VERSION, "tools", registry=REGISTRY)
async def workspace_tools_view(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    ctl.enqueue_all(ctl.world.put_tool(body))


@kopf.index(GROUP, VERSION, "datasets", registry=REGISTRY)
async def workspace_datasets_view(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    ctl.enqueue_all(ctl.world.put_dataset(body))


@kopf.index(GROUP, VERSION, "datapermits", registry=REGISTRY)
async def workspace_permits_view(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctl = _controller(memo)
    ctl.enqueue_all(ctl.world.put_permit(body))


@kopf.on.event(GROUP, VERSION, "tools", registry=REGISTRY)
async def workspaces_on_tool_deleted(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") == "DELETED":
        ctl = _controller(memo)
        ctl.enqueue_all(ctl.world.forget_tool(body["metadata"]["name"]))


@kopf.on.event(GROUP, VERSION, "datasets", registry=REGISTRY)
async def workspaces_on_dataset_deleted(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") == "DELETED":
        ctl = _controller(memo)
        ctl.enqueue_all(ctl.world.forget_dataset(body["metadata"]["name"]))


@kopf.on.event(GROUP, VERSION, "datapermits", registry=REGISTRY)
async def workspaces_on_permit_deleted(event: dict, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") == "DELETED":
        ctl = _controller(memo)
        ctl.enqueue_all(ctl.world.forget_permit(body["metadata"]["name"]))
