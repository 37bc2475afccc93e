from datetime import datetime, timedelta, timezone

import pytest

from spe_api import Condition, ConditionStatus, get_condition, is_true, remove_condition, set_condition

pytestmark = pytest.mark.api

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=5)


def test_adds_a_new_condition_with_now_as_transition_time():
    conds = set_condition([], "Ready", True, "Reconciled", "all good", 3, T0)
    assert conds == [Condition(type="Ready", status=ConditionStatus.TRUE, reason="Reconciled", message="all good",
                               observed_generation=3, last_transition_time=T0)]


def test_transition_time_kept_while_status_unchanged():
    first = set_condition([], "Ready", "False", "Progressing", "starting", 1, T0)
    second = set_condition(first, "Ready", False, "DatasetNotReady", "waiting for lung-ct", 2, T1)
    (cond,) = second
    assert cond.last_transition_time == T0
    assert (cond.reason, cond.message, cond.observed_generation) == ("DatasetNotReady", "waiting for lung-ct", 2)


def test_transition_time_moves_when_status_changes():
    first = set_condition([], "Ready", False, "Progressing", "starting", 1, T0)
    (cond,) = set_condition(first, "Ready", True, "Reconciled", "ready", 1, T1)
    assert cond.status == ConditionStatus.TRUE and cond.last_transition_time == T1


def test_input_not_mutated_and_order_kept():
    start = [
        {"type": "PermitActive", "status": "True", "reason": "Active", "message": "", "lastTransitionTime": "2026-11-01T12:00:00Z"},
        {"type": "Ready", "status": "False", "reason": "Progressing", "message": "", "lastTransitionTime": "2026-11-01T12:00:00Z"},
    ]
    snapshot = [dict(c) for c in start]
    result = set_condition(start, "PermitActive", False, "Expired", "permit expired", 4, T1)
    assert start == snapshot
    assert [c.type for c in result] == ["PermitActive", "Ready"]
    assert result[0].last_transition_time == T1 and result[1].last_transition_time == T0


def test_naive_now_is_utc_and_helpers():
    conds = set_condition(None, "Scheduled", "Unknown", "Progressing", "", None, datetime(2026, 1, 1))
    assert conds[0].last_transition_time.tzinfo is not None
    assert not is_true(conds, "Scheduled")
    conds = set_condition(conds, "Ready", True, "Reconciled", "", None, T0)
    assert is_true(conds, "Ready") and get_condition(conds, "Missing") is None
    assert [c.type for c in remove_condition(conds, "Scheduled")] == ["Ready"]


def test_serialises_in_kubernetes_shape():
    (cond,) = set_condition([], "Ready", True, "Reconciled", "ok", 7, T0)
    assert cond.to_dict() == {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                              "observedGeneration": 7, "lastTransitionTime": "2026-11-01T12:00:00Z"}


@pytest.mark.parametrize("reason", ["", "has space", "1Leading", "trailing-dash-"])
def test_reason_must_be_camel_case(reason):
    with pytest.raises(ValueError):
        set_condition([], "Ready", True, reason, "", None, T0)
