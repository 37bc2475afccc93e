"""The keyed reconcile queue: serial per key, coalesced kicks, requeue-after, retries.

Time here is the event loop's fake time (looptime): a reconcile that asks to run again in 0.1 s
runs again exactly 0.1 loop-seconds later, however busy the machine, and "nothing more happens"
is checked by letting loop time pass, not by a wall-clock sleep that a slow machine can outrun.
"""

from __future__ import annotations

import asyncio

import pytest

from spe_operator.workqueue import ReconcileQueue

pytestmark = pytest.mark.permits


def on_loop_time(test):
    """Fake loop time (looptime) on a loop of the test's own: exact only where no other test's
    tasks wait on real I/O."""
    return pytest.mark.asyncio(loop_scope="function")(pytest.mark.looptime(test))


async def _until(predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@on_loop_time
async def test_kicks_during_a_run_coalesce_into_one_more_run_and_never_overlap():
    running, calls, overlap = 0, [], []
    gate = asyncio.Event()

    async def reconcile(key):
        nonlocal running
        running += 1
        overlap.append(running)
        calls.append(key)
        if len(calls) == 1:
            await gate.wait()
        running -= 1
        return None

    q = ReconcileQueue(reconcile, interval=60)
    q.kick("a")
    await _until(lambda: len(calls) == 1)
    for _ in range(5):
        q.kick("a")
    gate.set()
    await _until(lambda: len(calls) == 2)
    await asyncio.sleep(30)  # loop time: half the interval, long enough for any stray extra run
    assert calls == ["a", "a"] and max(overlap) == 1
    await q.close()


@on_loop_time
async def test_requeue_after_is_honoured_and_capped_by_the_interval():
    loop = asyncio.get_running_loop()
    times = []

    async def reconcile(key):
        times.append(loop.time())
        return 0.1 if len(times) == 1 else 999

    q = ReconcileQueue(reconcile, interval=0.3)
    q.kick("a")
    await _until(lambda: len(times) == 3)
    assert times[1] - times[0] == pytest.approx(0.1, abs=1e-3)
    assert times[2] - times[1] == pytest.approx(0.3, abs=1e-3)
    await q.close()


@on_loop_time
async def test_failures_are_retried_with_backoff():
    calls = []

    async def reconcile(key):
        calls.append(key)
        if len(calls) < 3:
            raise RuntimeError("transient")
        return None

    q = ReconcileQueue(reconcile, interval=60)
    q.kick("a")
    await _until(lambda: len(calls) == 3)
    await q.close()


@on_loop_time
async def test_kick_if_changed_skips_the_generation_already_reconciled():
    calls = []

    async def reconcile(key):
        calls.append(key)
        q.observed(key, 7)
        return None

    q = ReconcileQueue(reconcile, interval=60)
    q.kick_if_changed("a", 7)
    await _until(lambda: len(calls) == 1)
    q.kick_if_changed("a", 7)
    await asyncio.sleep(30)  # loop time
    assert len(calls) == 1
    q.kick_if_changed("a", 8)
    await _until(lambda: len(calls) == 2)
    q.forget("a")
    assert "a" not in q
    await q.close()


@on_loop_time
async def test_a_deadline_preempts_a_slow_reconcile_started_before_it():
    loop = asyncio.get_running_loop()
    log = []
    release = asyncio.Event()

    async def reconcile(key):
        log.append(("start", loop.time()))
        if len(log) == 1:
            return 0.2  # "my boundary is in 200 ms"
        if len(log) == 2:
            await release.wait()  # a kicked reconcile that would run past the boundary
        return None

    q = ReconcileQueue(reconcile, interval=60)
    q.kick("a")
    await _until(lambda: len(log) == 1)
    first = log[0][1]
    await asyncio.sleep(0.05)
    q.kick("a")  # starts a slow run at ~50 ms
    await _until(lambda: len(log) == 3, timeout=2)
    assert log[2][1] - first == pytest.approx(0.2, abs=1e-3), "the fresh run starts at the boundary, not after the slow one"
    release.set()
    await q.close()


def test_child_fingerprint_ignores_status_and_bookkeeping_but_not_drift():
    from spe_operator.handlers.permits import child_fingerprint

    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "q", "namespace": "spe-p", "resourceVersion": "1", "labels": {"a": "b"}},
             "spec": {"hard": {"pods": "10"}}, "status": {"used": {"pods": "0"}}}
    busy = {**quota, "metadata": {**quota["metadata"], "resourceVersion": "2"}, "status": {"used": {"pods": "3"}}}
    edited = {**quota, "spec": {"hard": {"pods": "1000"}}}
    relabelled = {**quota, "metadata": {**quota["metadata"], "labels": {}}}
    assert child_fingerprint(busy) == child_fingerprint(quota)
    assert child_fingerprint(edited) != child_fingerprint(quota)
    assert child_fingerprint(relabelled) != child_fingerprint(quota)


def test_the_event_of_our_own_apply_is_not_drift_but_an_edit_or_a_deletion_is():
    from spe_operator.handlers.permits import child_event_is_drift, remember_applied

    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "q", "namespace": "spe-p", "resourceVersion": "7", "labels": {"a": "b"}},
             "spec": {"hard": {"pods": "10"}}}
    seen: dict = {}
    remember_applied(seen, [quota])  # what the API server returned from the reconciler's apply
    added = {**quota, "status": {"hard": {"pods": "10"}}}  # the quota controller filled in the status
    assert not child_event_is_drift(seen, "resourcequotas", "ADDED", added), "our own apply re-applied"
    busy = {**added, "status": {"used": {"pods": "3"}}}
    assert not child_event_is_drift(seen, "resourcequotas", "MODIFIED", busy)
    edited = {**quota, "spec": {"hard": {"pods": "1000"}}}
    assert child_event_is_drift(seen, "resourcequotas", "MODIFIED", edited)
    assert not child_event_is_drift(seen, "resourcequotas", "MODIFIED", edited), "the same edit twice"
    assert child_event_is_drift(seen, "resourcequotas", "DELETED", edited)
    assert ("resourcequotas", "spe-p", "q") not in seen


def test_an_unknown_child_is_drift_unless_it_comes_with_the_initial_listing():
    from spe_operator.handlers.permits import child_event_is_drift

    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spe-p", "labels": {"x": "y"}}}
    assert not child_event_is_drift({}, "namespaces", None, ns)
    assert child_event_is_drift({}, "namespaces", "ADDED", ns)


@on_loop_time
async def test_forgetting_a_key_lets_its_run_in_flight_finish_and_a_new_kick_waits_for_it():
    """The deletion a reconcile causes (its finalizer off) must not cancel what that run does
    next (the Event saying the group was left behind)."""
    log = []
    release = asyncio.Event()

    async def reconcile(key):
        log.append("start")
        if len(log) == 1:
            await release.wait()  # removing the finalizer: the watch's DELETED arrives meanwhile
            log.append("after the object went")
        return None

    q = ReconcileQueue(reconcile, interval=60)
    q.kick("a")
    await _until(lambda: log == ["start"])
    q.forget("a")  # what the DELETED event does
    assert "a" not in q
    q.kick("a")  # a new object of the same name
    await asyncio.sleep(1)
    assert log == ["start"], "the new key's run must not overlap the forgotten one's"
    release.set()
    await _until(lambda: log == ["start", "after the object went", "start"])
    await q.close()


@on_loop_time
async def test_forgetting_an_idle_key_cancels_its_wait():
    calls = []

    async def reconcile(key):
        calls.append(key)
        return None

    q = ReconcileQueue(reconcile, interval=60)
    q.kick("a")
    await _until(lambda: calls == ["a"])
    q.forget("a")
    await asyncio.sleep(120)  # past the interval: the forgotten key never runs again
    assert calls == ["a"]
    await q.close()
