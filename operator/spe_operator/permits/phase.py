"""The permit's phase from its validity window, suspension and revocation (pure).

``DataPermit.phase_at`` is the one rule (shared with the admission webhook); this module adds
what the reconciler needs around it: the condition reasons and messages, and the next instant
at which the phase changes by itself, so the reconcile can be scheduled at exactly that
boundary instead of waiting for the periodic timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from spe_api import DataPermit, DataPermitPhase, Message, Reason
from spe_api.common import utc

# Phases in which no workspace of the permit may run.
STOPPING_PHASES = frozenset({DataPermitPhase.EXPIRED, DataPermitPhase.SUSPENDED, DataPermitPhase.REVOKED})
# Phases in which the hub keeps its access binding (Expired and Revoked take it away: the hub
# has nothing left to start there; an extended notAfter brings it back).
HUB_ACCESS_PHASES = frozenset({DataPermitPhase.PENDING, DataPermitPhase.ACTIVE, DataPermitPhase.SUSPENDED})


@dataclass(frozen=True)
class PhaseInfo:
    """What the spec implies at one instant."""

    phase: DataPermitPhase
    reason: str
    message: str
    within_validity: bool
    validity_reason: str
    validity_message: str
    next_boundary: datetime | None  # when phase_at changes next without a spec change

    @property
    def stops_workspaces(self) -> bool:
        return self.phase in STOPPING_PHASES


def _fmt(dt: datetime | None) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else ""


def evaluate(permit: DataPermit, now: datetime) -> PhaseInfo:
    """The phase at ``now``, its reason and message, and the next time boundary."""
    spec = permit.spec
    now = utc(now)
    phase = permit.phase_at(now)
    fields = {"permit_id": spec.permit_id, "not_before": _fmt(spec.not_before), "not_after": _fmt(spec.not_after)}
    reason, message = {
        DataPermitPhase.ACTIVE: (Reason.ACTIVE, Message.PERMIT_ACTIVE.format(**fields)),
        DataPermitPhase.PENDING: (Reason.NOT_YET_VALID, Message.PERMIT_NOT_YET_VALID.format(**fields)),
        DataPermitPhase.EXPIRED: (Reason.EXPIRED, Message.PERMIT_EXPIRED.format(**fields)),
        DataPermitPhase.SUSPENDED: (Reason.SUSPENDED, Message.PERMIT_SUSPENDED.format(
            reason=spec.suspension_reason or "no reason given", **fields)),
        DataPermitPhase.REVOKED: (Reason.REVOKED, Message.PERMIT_REVOKED.format(
            reason=spec.revocation_reason or "no reason given", **fields)),
    }[phase]

    not_before = utc(spec.not_before) if spec.not_before is not None else None
    not_after = utc(spec.not_after)
    if not_before is not None and now < not_before:
        within, validity_reason, boundary = False, Reason.NOT_YET_VALID, not_before
        validity_message = Message.PERMIT_NOT_YET_VALID.format(**fields)
    elif now < not_after:
        within, validity_reason, boundary = True, Reason.ACTIVE, not_after
        validity_message = Message.PERMIT_WITHIN_VALIDITY.format(**fields)
    else:
        within, validity_reason, boundary = False, Reason.EXPIRED, None
        validity_message = Message.PERMIT_EXPIRED.format(**fields)
    if spec.revoked:
        boundary = None  # final: time changes nothing any more
    return PhaseInfo(phase, reason, message, within, validity_reason, validity_message, boundary)


def seconds_until(boundary: datetime | None, now: datetime) -> float | None:
    """Seconds from ``now`` to ``boundary`` (never negative), or None without a boundary."""
    if boundary is None:
        return None
    return max(0.0, (utc(boundary) - utc(now)).total_seconds())
