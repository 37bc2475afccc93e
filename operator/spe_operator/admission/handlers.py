"""The validating webhook's Kopf handlers: fetch what a rule needs, call the pure rule, refuse.

The decisions themselves live in :mod:`.rules`; serving the webhooks (certificate,
configuration) in :mod:`.serving`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import kopf
from pydantic import ValidationError

from spe_api import DataPermit, Dataset, OutputReview, Tool, Workspace, permit_namespace
from spe_kube import ApiError, KubeClient, kind_for

from ..registry import REGISTRY
from ..settings import SpeSettings
from ..workspaces.world import World, listed_world
from . import rules
from .configuration import WEBHOOKS

API = "spe.ehds.io/v1alpha1"
PERMITS = kind_for(API, "DataPermit")
DATASETS = kind_for(API, "Dataset")
WORKSPACES = kind_for(API, "Workspace")
TOOLS = kind_for(API, "Tool")

INVALID = 422    # the object is well-formed but breaks a rule that involves other objects
FORBIDDEN = 403  # the requester may not do this at all

log = logging.getLogger(__name__)


def _ids() -> dict[str, str]:
    return {hook.plural: hook.id for hook in WEBHOOKS}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(model, body, what: str):
    try:
        return model.from_manifest(body)
    except ValidationError as exc:  # the CRD schema normally prevents this
        raise kopf.AdmissionError(f"{what}: {exc}", code=INVALID) from exc


def _refuse(denial: rules.Denial | None, code: int = INVALID) -> None:
    if denial is not None:
        raise kopf.AdmissionError(denial.message, code=code)


def _kube(memo: kopf.Memo) -> KubeClient:
    """The webhooks' own API client, with its own connection pool: the API server waits for
    these answers (and refuses the object when they are late), so their lookups must not queue
    behind a reconciler's burst of requests on the shared client (measured: at 1,000 workspaces
    over 100 permits they did, and the API server refused hundreds of Workspace creates). The shared client where
    none was made (unit tests, a disabled webhook)."""
    return memo.get("admission_kube") or memo.kube


def _gateway_user(spe: SpeSettings) -> str:
    account = spe.egress_service_account
    if account.startswith("system:"):
        return account
    return rules.service_account_user(spe.operator_namespace, account)


# --- the three webhooks ---------------------------------------------------------------------

@kopf.on.validate(API.split("/")[0], "v1alpha1", "workspaces", id=_ids()["workspaces"],
                  operations=["CREATE", "UPDATE"], registry=REGISTRY)
async def validate_workspace(body: kopf.Body, old: kopf.Body | None, memo: kopf.Memo, **_: Any) -> None:
    ws = _parse(Workspace, body, "Workspace")
    previous = Workspace.from_manifest(old) if old else None
    world = listed_world(memo)
    if world is not None:
        permit, tool, available, expected, others = await _lookups_from_world(_kube(memo), world, ws)
    else:
        permit, tool, available, expected, others = await _lookups_from_api(_kube(memo), ws)
    _refuse(rules.check_workspace(
        ws, old=previous, permit=permit, expected_namespace=expected, tool=tool,
        available_tools=available, others=others, now=_now()))


Lookups = tuple[DataPermit | None, Tool | None, list[str], str, list[Workspace]]


async def _lookups_from_world(kube: KubeClient, world: World, ws: Workspace) -> Lookups:
    """The permit, the tool and the namespace's other Workspaces from the reconciler's view.

    At 5,000 workspaces a LIST of the namespace's Workspaces per admission (50 bodies parsed,
    several times per workspace) was most of the webhook's time and of the operator's peak
    memory. The view may lag the API server by a watch event: a permit or tool it has not seen
    yet is read from the API server (never refused for lag), and a Workspace created a moment
    ago and not counted here is still held to the ceilings by the reconciler's own gate."""
    _, permit = world.permit(ws.spec.permit)
    tool = world.tool(ws.spec.tool)
    if permit is None or tool is None:
        permit_body, tool_body = await asyncio.gather(
            kube.get_or_none(PERMITS, ws.spec.permit) if permit is None else asyncio.sleep(0, None),
            kube.get_or_none(TOOLS, ws.spec.tool) if tool is None else asyncio.sleep(0, None))
        permit = permit or (DataPermit.from_manifest(permit_body) if permit_body else None)
        tool = tool or (Tool.from_manifest(tool_body) if tool_body else None)
    available = sorted(name for name, (_, t) in world.tools.items() if t is not None and t.approved) \
        if tool is None else []
    expected = (permit.status.namespace if permit is not None and permit.status.namespace
                else permit_namespace(ws.spec.permit))
    return permit, tool, available, expected, world.workspaces_in(expected) if permit is not None else []


async def _lookups_from_api(kube: KubeClient, ws: Workspace) -> Lookups:
    # The three lookups at once: the create request of every Workspace waits for this webhook,
    # and the permit's namespace is almost always the conventional one (listed again if not).
    expected = permit_namespace(ws.spec.permit)
    permit_body, tool_body, listed = await asyncio.gather(
        kube.get_or_none(PERMITS, ws.spec.permit), kube.get_or_none(TOOLS, ws.spec.tool),
        kube.list(WORKSPACES, expected))
    permit = DataPermit.from_manifest(permit_body) if permit_body else None
    tool = Tool.from_manifest(tool_body) if tool_body else None
    available: list[str] = []
    if tool is None:
        available = [t.name for t in map(Tool.from_manifest, await kube.list(TOOLS)) if t.approved]
    others: list[Workspace] = []
    if permit is not None:
        if permit.status.namespace and permit.status.namespace != expected:
            expected = permit.status.namespace
            listed = await kube.list(WORKSPACES, expected)
        others = [Workspace.from_manifest(w) for w in listed]
    return permit, tool, available, expected, others


@kopf.on.validate(API.split("/")[0], "v1alpha1", "outputreviews", id=_ids()["outputreviews"],
                  operations=["CREATE"], registry=REGISTRY)
async def validate_output_review(body: kopf.Body, userinfo: dict, memo: kopf.Memo, **_: Any) -> None:
    spe: SpeSettings = memo.settings
    kube = _kube(memo)
    review = _parse(OutputReview, body, "OutputReview")
    username = (userinfo or {}).get("username", "")
    gateway = _gateway_user(spe)
    if username != gateway:
        _refuse(rules.check_output_review(review, username=username, gateway_username=gateway,
                                          workspace=None, permit=None, now=_now()), FORBIDDEN)
    ws_body = await kube.get_or_none(WORKSPACES, review.spec.workspace, review.namespace)
    workspace = Workspace.from_manifest(ws_body) if ws_body else None
    permit = None
    if workspace is not None:
        permit_body = await kube.get_or_none(PERMITS, workspace.spec.permit)
        permit = DataPermit.from_manifest(permit_body) if permit_body else None
    _refuse(rules.check_output_review(review, username=username, gateway_username=gateway,
                                      workspace=workspace, permit=permit, now=_now()))


@kopf.on.validate(API.split("/")[0], "v1alpha1", "datapermits", id=_ids()["datapermits"],
                  operations=["CREATE", "UPDATE"], registry=REGISTRY)
async def validate_data_permit(body: kopf.Body, old: kopf.Body | None, memo: kopf.Memo, **_: Any) -> None:
    kube = _kube(memo)
    permit = _parse(DataPermit, body, "DataPermit")
    previous = DataPermit.from_manifest(old) if old else None
    world = listed_world(memo)
    if world is not None and all(name in world.datasets for name in permit.spec.datasets):
        # The reconciler's view (see _lookups_from_world): a create no longer lists every permit,
        # which made 1,000 permits created together cost a million parsed bodies. A dataset it
        # has not seen yet sends the check to the API server (never refused for lag).
        existing = sorted(world.datasets)
        others = [m for _, _, m in world.permits.values() if m is not None] if previous is None else []
    else:
        existing, others = await _permit_lookups_from_api(kube, previous)
    if memo.settings.federation_role == "central":
        # At central, a permit may name the datasets its joined nodes hold (docs/federation.md).
        from ..federation.works import MANAGED_CLUSTER, held_datasets  # noqa: PLC0415 - central only

        try:
            existing += sorted(held_datasets(await kube.list(MANAGED_CLUSTER)))
        except ApiError as err:
            if not err.not_found:  # no OCM hub installed: no node holds anything
                raise
    _refuse(rules.check_data_permit(permit, old=previous, existing_datasets=existing, other_permits=others))


async def _permit_lookups_from_api(kube: KubeClient, previous: DataPermit | None) -> tuple[list[str], list[DataPermit]]:
    # Both lists at once (the API server gives this webhook 10 s; 300 permits created together
    # on the benchmark took longer one list after the other).
    datasets, permits = await asyncio.gather(kube.list(DATASETS),
                                             kube.list(PERMITS) if previous is None else asyncio.sleep(0, []))
    return [Dataset.from_manifest(d).name for d in datasets], [DataPermit.from_manifest(p) for p in permits]
