"""One permit's group sync and its group's removal, on the client wrapper."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from spe_api import DataPermit, DataPermitPhase, permit_group

from .client import IdentityProvider
from .plan import IdentityOutcome, MembershipPlan, Person, plan_membership, synced_outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    outcome: IdentityOutcome
    plan: MembershipPlan
    ended_sessions: int
    seconds_to_end_sessions: float | None  # how long ending the removed members' hub sessions took


async def sync_group(provider: IdentityProvider, permit: DataPermit, phase: DataPermitPhase) -> SyncReport:
    """Bring ``permit-<name>`` to the permit's members (or to nobody, when the permit stops):
    create the group, add and remove, then end the hub sessions of everyone taken out."""
    group = permit_group(permit.name)
    subjects = [m.subject for m in permit.spec.members]
    group_id = await provider.ensure_group(group, permit.name)
    current = await provider.members(group_id)
    resolved: dict[str, Person | None] = {}
    if phase in (DataPermitPhase.PENDING, DataPermitPhase.ACTIVE):
        found = await asyncio.gather(*(provider.find_user(s) for s in subjects))
        resolved = dict(zip(subjects, found))
    plan = plan_membership(phase, subjects, resolved, current)
    # Removals first, then the sessions: a person logging in again between the two gets a
    # token without the group.
    await asyncio.gather(*(provider.add_member(group_id, p) for p in plan.add),
                         *(provider.remove_member(group_id, p) for p in plan.remove))
    ended, took = 0, None
    if plan.end_sessions:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ended = sum(await asyncio.gather(*(provider.end_hub_sessions(p) for p in plan.end_sessions)))
        took = loop.time() - started
        log.info("DataPermit %s: %d hub session(s) of %s ended in %.3fs (group %s, permit %s)", permit.name, ended,
                 ", ".join(p.username for p in plan.end_sessions), took, group, phase.value)
    if plan.changes:
        log.info("DataPermit %s: group %s: added %s, removed %s", permit.name, group,
                 [p.username for p in plan.add] or "nobody", [p.username for p in plan.remove] or "nobody")
    members = len(subjects) - len(plan.missing)
    outcome = synced_outcome(plan, group=group, realm=provider.realm, phase=phase, members=members, ended=ended)
    return SyncReport(outcome, plan, ended, took)


async def remove_group(provider: IdentityProvider, permit_name: str) -> int:
    """Delete the permit's group, first ending the hub sessions of those it still holds.
    Returns how many sessions were ended. Idempotent (a group already gone is fine)."""
    group_id = await provider.find_group(permit_group(permit_name))
    if group_id is None:
        return 0
    held = await provider.members(group_id)
    await provider.delete_group(group_id)
    return sum(await asyncio.gather(*(provider.end_hub_sessions(p) for p in held)))
