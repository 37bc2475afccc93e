"""The permit reconcile re-applies its children only when they changed, drifted, or the safety
resync is due: the periodic reconcile itself applies nothing (that was most of the operator's
API traffic at scale, bench/operator)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from spe_api import DataPermitPhase
from spe_operator.handlers import permits as handler
from spe_operator.permits.phase import PhaseInfo
from spe_operator.permits.status import ChildrenResult
from spe_operator.settings import SpeSettings

from .factories import permit

pytestmark = pytest.mark.permits

ACTIVE = PhaseInfo(DataPermitPhase.ACTIVE, "Active", "", True, "WithinValidity", "", None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def run(coro, clock: Clock):
    loop = asyncio.new_event_loop()
    loop.time = clock.time  # the reconcile reads loop.time(); advance it by hand
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture
def applies(monkeypatch):
    calls: list[str] = []

    async def apply_children(kube, p, desired, namespace, settings, seen=None):
        calls.append(p.name)
        return ChildrenResult(True), None

    monkeypatch.setattr(handler, "_apply_children", apply_children)
    return calls


def sync(memo, p, settings, clock):
    return run(handler._sync_children(memo, p, settings, ACTIVE, "spe-" + p.name), clock)


def test_unchanged_children_are_applied_once_until_the_resync_is_due(applies):
    settings = SpeSettings(reconcile_interval=60, children_resync_interval=600)
    memo = SimpleNamespace(kube=None, permit_drift=set(), permit_children={}, permit_child_seen={})
    clock = Clock()
    p = permit("p1")
    sync(memo, p, settings, clock)
    for _ in range(9):  # nine periodic reconciles, one a minute: nothing to apply
        clock.now += 60
        sync(memo, p, settings, clock)
    assert applies == ["p1"]
    clock.now += 60  # 600 s after the last apply: the safety resync
    sync(memo, p, settings, clock)
    assert applies == ["p1", "p1"]


def test_drift_or_a_spec_change_applies_at_once(applies):
    settings = SpeSettings(children_resync_interval=600)
    memo = SimpleNamespace(kube=None, permit_drift=set(), permit_children={}, permit_child_seen={})
    clock = Clock()
    sync(memo, permit("p1"), settings, clock)
    memo.permit_drift.add("p1")  # a watched child was edited or deleted
    clock.now += 1
    sync(memo, permit("p1"), settings, clock)
    assert applies == ["p1", "p1"] and "p1" not in memo.permit_drift
    clock.now += 1
    changed = permit("p1", generation=2)
    changed.spec.ceilings.cpu = "4"
    sync(memo, changed, settings, clock)
    assert applies == ["p1", "p1", "p1"]
