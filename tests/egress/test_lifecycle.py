"""The OutputReview lifecycle, table-driven: every (from, to) pair is either allowed or refused."""

from __future__ import annotations

import itertools

import pytest

from spe_egress.lifecycle import OPEN, TERMINAL, IllegalTransition, Phase, can_transition, transition

pytestmark = pytest.mark.egress

P = Phase
ALLOWED = {
    (None, P.SUBMITTED),
    (P.SUBMITTED, P.CHECKING), (P.CHECKING, P.AWAITING_REVIEW),
    (P.AWAITING_REVIEW, P.APPROVED), (P.AWAITING_REVIEW, P.REJECTED), (P.AWAITING_REVIEW, P.RETURNED),
    (P.RETURNED, P.SUBMITTED), (P.RETURNED, P.WITHDRAWN),
    (P.APPROVED, P.RELEASED),
    # the requester may withdraw while nothing is decided
    (P.SUBMITTED, P.WITHDRAWN), (P.CHECKING, P.WITHDRAWN), (P.AWAITING_REVIEW, P.WITHDRAWN),
    # retention and revocation end every open request
    *((p, P.EXPIRED) for p in (P.SUBMITTED, P.CHECKING, P.AWAITING_REVIEW, P.RETURNED, P.APPROVED)),
    *((p, P.CANCELLED) for p in (P.SUBMITTED, P.CHECKING, P.AWAITING_REVIEW, P.RETURNED, P.APPROVED)),
}
ALL_PAIRS = list(itertools.product([None, *Phase], list(Phase)))


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS,
                         ids=[f"{getattr(c, 'value', c)}->{t.value}" for c, t in ALL_PAIRS])
def test_transition_table(current, target):
    if (current, target) in ALLOWED:
        assert can_transition(current, target)
        assert transition(current, target) is target
        assert transition(getattr(current, "value", current), target.value) is target  # strings too
    else:
        assert not can_transition(current, target)
        with pytest.raises(IllegalTransition) as err:
            transition(current, target)
        assert target.value in str(err.value)


def test_terminal_states_have_no_way_out():
    for phase in TERMINAL:
        assert not any(can_transition(phase, t) for t in Phase), phase
    assert not OPEN & TERMINAL
    assert OPEN | TERMINAL == set(Phase) - set()  # every phase is one or the other


@pytest.mark.parametrize("bad", ["", "Approve", "released", None])
def test_unknown_phases_are_refused(bad):
    assert not can_transition(P.APPROVED, bad) if bad is not None else True
    assert not can_transition(bad or "nonsense", P.RELEASED)
