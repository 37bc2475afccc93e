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


class Kicks(list):
    def kick(self, name: str) -> None:
        self.append(name)


def new_memo() -> SimpleNamespace:
    return SimpleNamespace(kube=None, permit_drift=set(), permit_children={}, permit_child_seen={},
                           permit_applying={}, permit_queue=Kicks())


def sync(memo, p, settings, clock):
    return run(handler._sync_children(memo, p, settings, ACTIVE, "spe-" + p.name), clock)


def test_unchanged_children_are_applied_once_until_the_resync_is_due(applies):
    settings = SpeSettings(reconcile_interval=60, children_resync_interval=600)
    memo = new_memo()
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
    memo = new_memo()
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


CHILD = ("networkpolicies", "spe-p1", "default-deny")


@pytest.mark.parametrize("event_shows, drift", [("what the apply returned", False), ("something else", True)])
def test_a_child_event_during_the_apply_is_judged_against_what_the_apply_returned(monkeypatch, event_shows, drift):
    """The watch delivers the namespace's ADDED before the other applies answer: that is our own
    apply, not drift (taken for drift, every child of every new permit was applied twice)."""
    memo = new_memo()

    async def apply_children(kube, p, desired, namespace, settings, seen=None):
        # the child's watch event arrives first (the handler parks it while the apply runs) ...
        assert p.name in memo.permit_applying
        memo.permit_applying[p.name][CHILD] = "fp-applied" if not drift else "fp-edited-by-someone"
        # ... then the apply's answer is remembered
        seen[CHILD] = "fp-applied"
        return ChildrenResult(True), None

    monkeypatch.setattr(handler, "_apply_children", apply_children)
    sync(memo, permit("p1"), SpeSettings(), Clock())
    assert memo.permit_applying == {}
    assert (memo.permit_queue == ["p1"]) is drift and ("p1" in memo.permit_drift) is drift


def _netpol(spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": CHILD[2], "namespace": CHILD[1], "labels": {"spe.ehds.io/permit": "p1"}},
            "spec": spec}


def test_the_event_of_the_apply_in_flight_is_parked_and_the_same_event_later_is_no_drift():
    memo = new_memo()
    ours = _netpol({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    memo.permit_applying["p1"] = {}
    handler.on_child_event(memo, "networkpolicies", "ADDED", "p1", ours)
    assert memo.permit_queue == [] and memo.permit_applying["p1"] == {CHILD: handler.child_fingerprint(ours)}
    # the apply returned the same object: nothing drifted
    handler.remember_applied(memo.permit_child_seen, [ours])
    assert not handler.drifted_during_apply(memo.permit_child_seen, memo.permit_applying.pop("p1"))
    # an edit by someone else after the apply is drift, judged at once
    edited = _netpol({"podSelector": {}, "policyTypes": ["Ingress"]})
    handler.on_child_event(memo, "networkpolicies", "MODIFIED", "p1", edited)
    assert memo.permit_queue == ["p1"] and "p1" in memo.permit_drift
    # a deletion is drift even while an apply runs
    memo.permit_applying["p1"] = {}
    handler.on_child_event(memo, "networkpolicies", "DELETED", "p1", edited)
    assert memo.permit_queue == ["p1", "p1"]
