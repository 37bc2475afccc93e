"""The OutputReview lifecycle: a pure state machine (no I/O, no clock).

    Submitted -> Checking -> AwaitingReview -> Approved | Rejected | Returned
    Returned  -> Submitted (resubmitted) | Withdrawn
    Approved  -> Released
    any open state -> Expired (retention elapsed) | Cancelled (permit revoked)
                      | Withdrawn (the requester withdraws)

The gateway writes every phase; the operator writes Expired and Cancelled too. A transition
not in the table raises :class:`IllegalTransition` and nothing is changed.
"""

from __future__ import annotations

from spe_api import OutputReviewPhase as Phase

#: States in which a request still waits on someone; retention and revocation end them.
OPEN: frozenset[Phase] = frozenset({
    Phase.SUBMITTED, Phase.CHECKING, Phase.AWAITING_REVIEW, Phase.RETURNED, Phase.APPROVED})

#: States from which nothing moves on.
TERMINAL: frozenset[Phase] = frozenset({
    Phase.REJECTED, Phase.RELEASED, Phase.WITHDRAWN, Phase.EXPIRED, Phase.CANCELLED})

_TERMINATING = {Phase.EXPIRED, Phase.CANCELLED}

_ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.SUBMITTED: frozenset({Phase.CHECKING, Phase.WITHDRAWN}),
    Phase.CHECKING: frozenset({Phase.AWAITING_REVIEW, Phase.WITHDRAWN}),
    Phase.AWAITING_REVIEW: frozenset({Phase.APPROVED, Phase.REJECTED, Phase.RETURNED, Phase.WITHDRAWN}),
    Phase.RETURNED: frozenset({Phase.SUBMITTED, Phase.WITHDRAWN}),
    Phase.APPROVED: frozenset({Phase.RELEASED}),
}


class IllegalTransition(ValueError):
    """A phase change that the lifecycle does not allow."""

    def __init__(self, current: Phase | str | None, target: Phase | str):
        self.current = current
        self.target = target
        cur = getattr(current, "value", current)
        tgt = getattr(target, "value", target)
        super().__init__(f"an export request in phase {cur} cannot move to {tgt}")


def allowed_targets(current: Phase) -> frozenset[Phase]:
    """Every phase that ``current`` may move to."""
    targets = set(_ALLOWED.get(current, frozenset()))
    if current in OPEN:
        targets |= _TERMINATING
    return frozenset(targets)


def can_transition(current: Phase | str | None, target: Phase | str) -> bool:
    try:
        tgt = Phase(target)
    except ValueError:
        return False
    if current is None:  # a new request is born Submitted
        return tgt is Phase.SUBMITTED
    try:
        cur = Phase(current)
    except ValueError:
        return False
    return tgt in allowed_targets(cur)


def transition(current: Phase | str | None, target: Phase | str) -> Phase:
    """Return ``target`` as a :class:`Phase` if the move is legal, else raise."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return Phase(target)


def is_open(phase: Phase | str | None) -> bool:
    try:
        return Phase(phase) in OPEN
    except ValueError:
        return False
