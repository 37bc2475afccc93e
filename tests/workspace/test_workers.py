"""The workspace controller's workers: a burst of workspaces is reconciled concurrently, not
queued behind a few reconciles that wait on a slow API server (measured on the operator
benchmark: 8 workers held 100 new workspaces back by ~17 s at p50)."""

from __future__ import annotations

import asyncio

import pytest

from spe_operator.handlers.workspaces import WORKSPACE_POOL
from spe_operator.settings import SpeSettings
from spe_operator.workqueue import KeyedQueue
from spe_operator.workspaces import controller as controller_module

pytestmark = pytest.mark.workspace


async def _until(predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_a_burst_of_workspaces_is_reconciled_as_wide_as_the_connection_pool(monkeypatch):
    async def listed_at_once(self):  # no API server here: the child watches only report "listed"
        self.listed.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(controller_module.LabelWatch, "run", listed_at_once)
    ctl = controller_module.WorkspaceController(kube=None, settings=SpeSettings())
    running, peak, done = 0, 0, []
    slow_api = asyncio.Event()

    async def reconcile(key):  # each waits on the API server (an apply, a status write)
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await slow_api.wait()
        running -= 1
        done.append(key)

    ctl.reconcile = reconcile
    await ctl.start()
    try:
        ctl.enqueue_all([("spe-p", f"w{i}") for i in range(100)])
        await _until(lambda: peak >= WORKSPACE_POOL)
        await asyncio.sleep(0.05)
        assert peak == WORKSPACE_POOL, "more in flight than the client has connections"
        slow_api.set()
        await _until(lambda: len(done) == 100)
    finally:
        await ctl.stop()


async def test_the_keyed_queue_holds_each_key_once_and_requeues_a_key_put_while_held():
    q: KeyedQueue[str] = KeyedQueue()
    for key in ("a", "b", "a"):
        q.put(key)
    assert await q.get() == "a"
    q.put("a")  # while a worker holds it: not handed to a second worker
    assert await q.get() == "b"
    q.put("a")
    q.done("b")
    assert q._ready.empty()
    q.done("a")  # let go: queued once more, once
    assert await q.get() == "a" and q._ready.empty()
    q.done("a")
    q.put_after("c", 0.01)
    q.put_after("c", 0.02)  # the newest timer wins
    assert await asyncio.wait_for(q.get(), 1) == "c" and q.timer("c") is None and q._ready.empty()
