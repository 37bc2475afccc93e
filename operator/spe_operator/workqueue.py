"""The operator's keyed work queues: the one home of "reconcile this key, one run at a time".

Two shapes, for two kinds of controller; both retry a failed key with the same backoff
(``backoff``), and both coalesce: a key asked for while it is being reconciled runs exactly once
more afterwards, never twice at once.

``KeyedQueue`` -- keys wait for a pool of workers (the Workspace and Dataset controllers): at most
as many reconciles at once as there are workers, each key queued at most once, delayed puts for
deadlines and retries (client-go's workqueue, in asyncio).

``ReconcileQueue`` -- one task per key (the DataPermit reconciler), woken by kicks, by its own
schedule (the next validity boundary or the periodic re-reconcile), or by a retry after an error.

Why not Kopf's ``@kopf.timer`` / ``@kopf.daemon`` on the DataPermit: Kopf puts a finalizer on
every object that has a timer or a daemon (to stop them before the object goes), and a permit
has no state outside Kubernetes to clean up -- its children go by owner-reference garbage
collection. A finalizer would only add a way for deletion to hang while the operator is down.
So the schedule lives here, beside Kopf, and the Kopf handlers merely ``kick`` a permit.

Guarantees of ``ReconcileQueue``: one reconcile per key at a time (no interleaving of two
reconciles of the same permit); kicks during a reconcile coalesce into exactly one follow-up
run; a reconcile returns the seconds until it wants to run again, which the worker honours to
the millisecond.

A deadline preempts: when a reconcile asked to run again sooner than the periodic interval
(a validity boundary), and a reconcile started by a kick is still running when that moment
comes, the running one is cancelled and a fresh one starts at once -- otherwise a slow
reconcile begun a moment before notAfter would keep the permit Active for its whole duration.
Reconciles are idempotent and safe to interrupt at any line, so cancelling one loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiohttp import ClientError

log = logging.getLogger(__name__)

# The operator's HTTP client (Kopf's too): connection trouble is logged without a traceback.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (ClientError,)

K = TypeVar("K", bound=Hashable)

BACKOFF_MIN = 0.5


def backoff(failures: int, maximum: float) -> float:
    """Seconds before the next try after ``failures`` failures in a row: 0.5, 1, 2, ... ``maximum``."""
    return min(maximum, BACKOFF_MIN * 2 ** (failures - 1))


class KeyedQueue(Generic[K]):
    """Keys waiting for a pool of workers, each queued at most once.

    A worker takes a key with ``get`` and hands it back with ``done``; a key ``put`` while a
    worker holds it is queued once more by ``done`` (one reconcile per key at a time, and no
    change missed). ``put_after`` queues a key later (one timer per key: the newest wins)."""

    def __init__(self) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def put(self, key: K) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def put_all(self, keys: Iterable[K]) -> None:
        for key in keys:
            self.put(key)

    def put_after(self, key: K, seconds: float) -> None:
        """Queue ``key`` in ``seconds`` (replacing any timer it has)."""
        self.cancel_timer(key)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(0.0, seconds), self._fire, key)

    def timer(self, key: K) -> asyncio.TimerHandle | None:
        """The pending ``put_after`` of ``key``, if any."""
        return self._timers.get(key)

    def cancel_timer(self, key: K) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.put(key)

    async def get(self) -> K:
        """The next key; the caller holds it until ``done``."""
        key = await self._ready.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        """The worker let go of ``key``: queued again if it was put meanwhile."""
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.put(key)


Reconcile = Callable[[str], Awaitable[float | None]]

PERMIT_BACKOFF_MAX = 30.0


@dataclass
class _Slot:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    failures: int = 0
    generation: int | None = None  # last generation reconciled (for kick_if_changed)
    runs: int = 0
    deadline: float | None = None  # loop time a reconcile asked to run again by (sooner than the interval)
    preempted: int = 0
    running: bool = False  # a reconcile is in flight


class ReconcileQueue:
    """One task per key (the DataPermit reconciler's shape; see the module's docstring)."""

    def __init__(self, reconcile: Reconcile, *, interval: float, name: str = "reconcile"):
        self._reconcile = reconcile
        self._interval = interval
        self._name = name
        self._slots: dict[str, _Slot] = {}
        self._finishing: dict[str, asyncio.Task] = {}  # forgotten keys whose last run is still in flight
        self._closed = False

    # --- triggers ------------------------------------------------------------------------

    def kick(self, key: str) -> None:
        """Reconcile ``key`` now (or right after its current run)."""
        if self._closed:
            return
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
            slot.task = asyncio.get_running_loop().create_task(self._worker(key, slot), name=f"{self._name}:{key}")
        slot.wake.set()

    def kick_if_changed(self, key: str, generation: int | None) -> None:
        """Kick unless ``generation`` is the one last reconciled (a status-only change)."""
        slot = self._slots.get(key)
        if slot is None or generation is None or slot.generation != generation:
            self.kick(key)

    def observed(self, key: str, generation: int | None) -> None:
        slot = self._slots.get(key)
        if slot is not None:
            slot.generation = generation

    def forget(self, key: str) -> None:
        """Stop reconciling ``key`` (its object is gone). A run in flight is let finish, never
        cancelled: what it does after the object went (the Event saying a permit's group was
        left behind, posted once the last finalizer is off) would otherwise be lost to the
        watch event of the deletion it caused. A later kick of the same key waits for it."""
        slot = self._slots.pop(key, None)
        if slot is None or slot.task is None or slot.task is asyncio.current_task():
            return
        if not slot.running:
            slot.task.cancel()
            return
        task = self._finishing[key] = slot.task
        task.add_done_callback(lambda done: self._finishing.pop(key, None) if self._finishing.get(key) is done
                               else None)

    def runs(self, key: str) -> int:
        slot = self._slots.get(key)
        return slot.runs if slot else 0

    def __contains__(self, key: str) -> bool:
        return key in self._slots

    async def close(self) -> None:
        self._closed = True
        tasks = [s.task for s in self._slots.values() if s.task is not None] + list(self._finishing.values())
        self._slots.clear()
        self._finishing.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- the worker ----------------------------------------------------------------------

    async def _worker(self, key: str, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        delay: float | None = 0.0
        prior = self._finishing.get(key)
        if prior is not None:  # the last run for an object of this name that went: never overlap it
            await asyncio.wait([prior])
        while self._slots.get(key) is slot:
            if not slot.wake.is_set():
                try:
                    await asyncio.wait_for(slot.wake.wait(), timeout=delay)
                except TimeoutError:
                    pass
            slot.wake.clear()
            if self._slots.get(key) is not slot:
                return
            started = loop.time()
            slot.running = True
            try:
                requeue = await self._run_once(key, slot)
            except asyncio.CancelledError:
                raise
            except _Preempted:
                slot.preempted += 1
                log.debug("%s of %s preempted by its deadline after %.3fs", self._name, key, loop.time() - started)
                delay = 0.0
                continue
            except Exception as exc:  # noqa: BLE001 - any failure is retried with backoff
                slot.failures += 1
                delay = backoff(slot.failures, PERMIT_BACKOFF_MAX)
                slot.deadline = None
                if isinstance(exc, (OSError, *_CONNECTION_ERRORS)):  # the API server away: no traceback
                    log.warning("%s of %s failed (attempt %d): %s; retrying in %.1fs", self._name, key,
                                slot.failures, exc, delay)
                else:
                    log.exception("%s of %s failed (attempt %d); retrying in %.1fs", self._name, key,
                                  slot.failures, delay)
                continue
            finally:
                slot.runs += 1
                slot.running = False
            slot.failures = 0
            delay = self._interval if requeue is None else min(max(requeue, 0.0), self._interval)
            slot.deadline = loop.time() + delay if delay < self._interval else None
            log.debug("%s of %s took %.3fs; next in %.3fs", self._name, key, loop.time() - started, delay)

    async def _run_once(self, key: str, slot: _Slot) -> float | None:
        """One reconcile; cancelled and restarted when the deadline passes while it runs."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._reconcile(key))
        deadline = slot.deadline
        if deadline is None or deadline <= loop.time():
            slot.deadline = None
            return await task
        try:
            done, _ = await asyncio.wait({task}, timeout=deadline - loop.time())
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            return task.result()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it is being replaced
            pass
        slot.deadline = None
        raise _Preempted()


class _Preempted(Exception):
    """The running reconcile was cancelled at its deadline; run a fresh one now."""
