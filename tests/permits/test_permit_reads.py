"""Where the permit reconciler reads its namespace's Workspaces: the workspace reconciler's
watch-fed view while the permit lets them run; the API server when its phase stops them."""

from __future__ import annotations

from datetime import datetime, timezone

import kopf
import pytest

from spe_api import DataPermit
from spe_operator.handlers.permits import _workspaces
from spe_operator.permits.phase import evaluate
from spe_operator.workspaces.world import World
from tests.api.helpers import edit, example

pytestmark = pytest.mark.permits

NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


class CountingKube:
    def __init__(self, *objects: dict):
        self.objects, self.lists = list(objects), 0

    async def list(self, kind, namespace=None, **_):
        self.lists += 1
        return [o for o in self.objects if o["kind"] == kind.kind and o["metadata"].get("namespace") == namespace]


class Controller:
    def __init__(self, *workspaces: dict, listed: bool = True):
        self.world, self.listed = World(), listed
        for body in workspaces:
            self.world.put_workspace({**body, "metadata": {"resourceVersion": "1", "uid": "u", **body["metadata"]}})


def _info(**spec):
    return evaluate(DataPermit.from_manifest(edit(example("permit"), **spec)), NOW)


def _seen(*bodies: dict) -> dict:
    """What the permit reconciler's own watch recorded (handlers.permits.workspace_event)."""
    return {(b["metadata"]["namespace"], b["metadata"]["name"]):
            (b["spec"]["permit"], bool(b["spec"].get("running")), False) for b in bodies}


async def test_an_active_permit_reads_the_world_and_lists_nothing():
    ws = example("workspace")
    kube = CountingKube(ws)
    info = _info()
    assert not info.stops_workspaces
    memo = kopf.Memo(workspace_controller=Controller(ws), permit_workspaces=_seen(ws))
    found = await _workspaces(memo, kube, ws["metadata"]["namespace"], info)
    assert [w.name for w in found] == [ws["metadata"]["name"]] and kube.lists == 0


async def test_a_world_behind_the_permits_own_watch_is_not_trusted():
    """The permit's watch saw a new Workspace that the world has not received yet: list."""
    ws, new = example("workspace"), edit(example("workspace"), metadata__name="new")
    kube = CountingKube(ws, new)
    memo = kopf.Memo(workspace_controller=Controller(ws), permit_workspaces=_seen(ws, new))
    found = await _workspaces(memo, kube, ws["metadata"]["namespace"], _info())
    assert {w.name for w in found} == {ws["metadata"]["name"], "new"} and kube.lists == 1


async def test_a_revoked_permit_lists_so_that_no_new_workspace_escapes_the_stop():
    ws = example("workspace")
    created_a_moment_ago = edit(example("workspace"), metadata__name="new")
    kube = CountingKube(ws, created_a_moment_ago)
    info = _info(spec__revoked=True, spec__revocationReason="consent withdrawn")
    assert info.stops_workspaces
    found = await _workspaces(kopf.Memo(workspace_controller=Controller(ws)), kube, ws["metadata"]["namespace"], info)
    assert {w.name for w in found} == {ws["metadata"]["name"], "new"} and kube.lists == 1


async def test_before_the_world_has_listed_the_api_server_answers():
    ws = example("workspace")
    kube = CountingKube(ws)
    found = await _workspaces(kopf.Memo(workspace_controller=Controller(listed=False)), kube,
                              ws["metadata"]["namespace"], _info())
    assert len(found) == 1 and kube.lists == 1
