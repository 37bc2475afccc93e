"""Unit tests of the phase rule's reasons and boundaries, the status, transitions and the stop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spe_api import ConditionType, DataPermitPhase, Reason
from spe_operator.permits.phase import evaluate, seconds_until
from spe_operator.permits.status import (ChildrenResult, allocation_of, build_status, permit_active_condition,
                                         transitions, workspace_actions)

from .factories import permit, workspace

pytestmark = pytest.mark.permits

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
NB, NA = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)


@pytest.mark.parametrize("at,extra,phase,reason,within,boundary", [
    (T0, {}, DataPermitPhase.PENDING, Reason.NOT_YET_VALID, False, NB),
    (NB - timedelta(microseconds=1), {}, DataPermitPhase.PENDING, Reason.NOT_YET_VALID, False, NB),
    (NB, {}, DataPermitPhase.ACTIVE, Reason.ACTIVE, True, NA),
    (NA - timedelta(microseconds=1), {}, DataPermitPhase.ACTIVE, Reason.ACTIVE, True, NA),
    (NA, {}, DataPermitPhase.EXPIRED, Reason.EXPIRED, False, None),
    (NB, {"suspended": True, "suspensionReason": "audit"}, DataPermitPhase.SUSPENDED, Reason.SUSPENDED, True, NA),
    (T0, {"suspended": True, "suspensionReason": "audit"}, DataPermitPhase.SUSPENDED, Reason.SUSPENDED, False, NB),
    (NB, {"revoked": True, "revocationReason": "breach"}, DataPermitPhase.REVOKED, Reason.REVOKED, True, None),
    (NA, {"suspended": True, "suspensionReason": "audit"}, DataPermitPhase.EXPIRED, Reason.EXPIRED, False, None),
])
def test_evaluate(at, extra, phase, reason, within, boundary):
    info = evaluate(permit("p1", not_before=NB, not_after=NA, **extra), at)
    assert (info.phase, info.reason, info.within_validity, info.next_boundary) == (phase, reason, within, boundary)
    assert info.message and info.validity_message
    if phase == DataPermitPhase.SUSPENDED:
        assert "audit" in info.message
    if phase == DataPermitPhase.REVOKED:
        assert "breach" in info.message


def test_seconds_until():
    assert seconds_until(None, T0) is None
    assert seconds_until(NB, T0) == 10.0
    assert seconds_until(T0, NB) == 0.0


def test_status_of_an_active_permit():
    p = permit("p1", not_after=NA)
    wss = [workspace("a", running=True, cpu="2", memory="8Gi", gpus={"count": 1, "model": "NVIDIA-L40S"}),
           workspace("b", running=False)]
    status = build_status(p, evaluate(p, T0), ChildrenResult(True), wss, "spe-p1", T0)
    assert status.phase == DataPermitPhase.ACTIVE
    assert status.namespace == "spe-p1" and status.members == 2 and status.observed_generation == 1
    assert status.workspaces == ["a", "b"]
    alloc = status.allocated
    assert (alloc.cpu, alloc.memory, alloc.storage) == ("2", "8Gi", "40Gi")
    assert [(g.model, g.count) for g in alloc.gpus] == [("NVIDIA-L40S", 1)]
    conds = {c.type: c for c in status.conditions}
    assert {t: c.status.value for t, c in conds.items()} == {
        ConditionType.READY: "True", ConditionType.ACTIVE: "True",
        ConditionType.WITHIN_VALIDITY: "True", ConditionType.NAMESPACE_READY: "True"}
    assert all(c.observed_generation == 1 for c in conds.values())


def test_status_keeps_transition_times_while_unchanged_and_moves_them_on_change():
    p = permit("p1", not_after=NA)
    first = build_status(p, evaluate(p, T0), ChildrenResult(True), [], "spe-p1", T0)
    p2 = p.model_copy(update={"status": first})
    later = T0 + timedelta(seconds=5)
    same = build_status(p2, evaluate(p2, later), ChildrenResult(True), [], "spe-p1", later)
    assert same.to_dict() == first.to_dict()
    expired = build_status(p2, evaluate(p2, NA), ChildrenResult(True), [], "spe-p1", NA)
    ready = expired.condition(ConditionType.READY)
    assert (ready.status.value, ready.reason, ready.last_transition_time) == ("False", Reason.EXPIRED, NA)
    assert expired.phase == DataPermitPhase.EXPIRED


def test_status_says_when_children_failed():
    p = permit("p1", not_after=NA)
    status = build_status(p, evaluate(p, T0), ChildrenResult(False, Reason.FAILED, "boom"), [], "spe-p1", T0)
    assert status.condition(ConditionType.NAMESPACE_READY).status.value == "False"
    ready = status.condition(ConditionType.READY)
    assert (ready.status.value, ready.reason, ready.message) == ("False", Reason.FAILED, "boom")
    assert status.message == "boom"


def test_transitions():
    p = permit("p1", not_after=NA)
    (issued,) = transitions(p, evaluate(p, T0), "spe-p1")
    assert issued.act == "permit.issued" and "spe-p1" in issued.message
    active = p.model_copy(update={"status": build_status(p, evaluate(p, T0), ChildrenResult(True), [], "spe-p1", T0)})
    assert transitions(active, evaluate(active, T0), "spe-p1") == []
    (expired,) = transitions(active, evaluate(active, NA), "spe-p1")
    assert (expired.act, expired.reason, expired.warning) == ("permit.expired", Reason.EXPIRED, True)
    changed = active.model_copy(update={"metadata": active.metadata.model_copy(update={"generation": 2})})
    assert [t.act for t in transitions(changed, evaluate(changed, T0), "spe-p1")] == ["permit.changed"]


def test_workspace_actions_only_while_the_phase_stops_workspaces():
    wss = [workspace("a", running=True), workspace("b", running=False)]
    active = permit("p1", not_after=NA)
    assert not workspace_actions(evaluate(active, T0), wss).stop
    actions = workspace_actions(evaluate(active, NA), wss)
    assert [w.name for w in actions.stop] == ["a"]
    assert [w.name for w in actions.mark] == ["a", "b"]


def test_permit_active_condition_body():
    ws = workspace("a", running=True)
    p = permit("p1", not_after=NA)
    body = permit_active_condition(ws, evaluate(p, NA), NA)
    assert body["metadata"] == {"name": "a", "namespace": "spe-p1"}
    (cond,) = body["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PermitActive", "False", "PermitExpired")
    # once marked, no further write is wanted
    marked = ws.model_copy(update={"status": ws.status.model_copy(update={"conditions": [
        __import__("spe_api").Condition.model_validate(cond)]})})
    assert workspace_actions(evaluate(p, NA), [marked]).mark == []


def test_allocation_ignores_workspaces_being_deleted():
    assert allocation_of([]).cpu == "0"
