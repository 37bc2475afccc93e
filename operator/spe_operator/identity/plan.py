"""What a permit's group should hold, and what to do about what it holds (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from spe_api import DataPermitPhase, Message, Reason

# Phases in which the group holds the members (the hub shows only Active permits anyway; a
# Pending permit's group is ready at notBefore).
MEMBER_PHASES = frozenset({DataPermitPhase.PENDING, DataPermitPhase.ACTIVE})
MAX_LISTED_MISSING = 20


@dataclass(frozen=True, order=True)
class Person:
    """A user of the identity provider: its id and user name."""

    username: str
    id: str


@dataclass(frozen=True)
class MembershipPlan:
    """What to do to the group: add, remove, and whose hub sessions to end (those removed)."""

    add: tuple[Person, ...] = ()
    remove: tuple[Person, ...] = ()
    missing: tuple[str, ...] = ()  # subjects the identity provider does not know
    keeps_members: bool = True

    @property
    def end_sessions(self) -> tuple[Person, ...]:
        """Everyone taken out of the group loses their hub session: a member dropped from the
        permit, and every member when the permit stops."""
        return self.remove

    @property
    def changes(self) -> bool:
        return bool(self.add or self.remove)


def plan_membership(phase: DataPermitPhase, subjects: Iterable[str], resolved: Mapping[str, Person | None],
                    current: Iterable[Person]) -> MembershipPlan:
    """The group's changes: ``resolved`` maps each member subject to its user (None: not found),
    ``current`` is who the group holds now."""
    keeps = phase in MEMBER_PHASES
    subjects = list(subjects)
    missing = tuple(s for s in subjects if resolved.get(s) is None)
    wanted = {p.id: p for s in subjects if (p := resolved.get(s)) is not None} if keeps else {}
    held = {p.id: p for p in current}
    add = tuple(sorted(p for i, p in wanted.items() if i not in held))
    remove = tuple(sorted(p for i, p in held.items() if i not in wanted))
    return MembershipPlan(add=add, remove=remove, missing=missing if keeps else (), keeps_members=keeps)


@dataclass(frozen=True)
class IdentityOutcome:
    """The IdentitySynced condition a sync earned, and what status.group says."""

    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str
    group: str | None = None
    retry: bool = False  # the sync failed: run it again (with backoff)
    details: dict = field(default_factory=dict)


def synced_outcome(plan: MembershipPlan, *, group: str, realm: str, phase: DataPermitPhase, members: int,
                   ended: int) -> IdentityOutcome:
    """After a sync that went through: True (all found, or the group emptied as it should be),
    False naming the members the identity provider does not know (the others are in sync)."""
    if not plan.keeps_members:
        return IdentityOutcome("True", Reason.GROUP_EMPTIED, Message.IDENTITY_GROUP_EMPTIED.format(
            group=group, realm=realm, phase=phase.value, ended=ended), group)
    if plan.missing:
        shown = list(plan.missing[:MAX_LISTED_MISSING])
        more = len(plan.missing) - len(shown)
        listing = ", ".join(shown) + (f" and {more} more" if more else "")
        return IdentityOutcome("False", Reason.MEMBERS_NOT_FOUND, Message.IDENTITY_MEMBERS_NOT_FOUND.format(
            group=group, realm=realm, members=members, missing=listing), group)
    return IdentityOutcome("True", Reason.GROUP_SYNCED, Message.IDENTITY_GROUP_SYNCED.format(
        group=group, realm=realm, members=members), group)


def not_configured_outcome() -> IdentityOutcome:
    return IdentityOutcome("Unknown", Reason.IDENTITY_PROVIDER_NOT_CONFIGURED, Message.IDENTITY_NOT_CONFIGURED)


def unreachable_outcome(*, url: str, group: str, error: str, recorded_group: str | None) -> IdentityOutcome:
    return IdentityOutcome("False", Reason.IDENTITY_PROVIDER_UNREACHABLE, Message.IDENTITY_UNREACHABLE.format(
        url=url, group=group, error=error), recorded_group, retry=True)


def error_outcome(*, client: str, group: str, error: str, recorded_group: str | None) -> IdentityOutcome:
    return IdentityOutcome("False", Reason.IDENTITY_PROVIDER_ERROR, Message.IDENTITY_ERROR.format(
        client=client, group=group, error=error), recorded_group, retry=True)
