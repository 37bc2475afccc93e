"""The permit group planner and its condition (pure): desired vs actual membership -> actions."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from spe_api import DataPermitPhase, DataPermitStatus, parse_permit_group, permit_group
from spe_operator.identity.plan import (Person, error_outcome, not_configured_outcome, plan_membership,
                                        synced_outcome, unreachable_outcome)
from spe_operator.identity.reconcile import backoff, with_identity
from spe_operator.settings import SpeSettings

pytestmark = pytest.mark.hub

RITA, BOB, ANN = Person("rita", "id-r"), Person("bob", "id-b"), Person("ann", "id-a")
NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


def test_a_new_group_gets_every_member_found():
    plan = plan_membership(DataPermitPhase.ACTIVE, ["rita", "bob"], {"rita": RITA, "bob": BOB}, [])
    assert plan.add == (BOB, RITA) and plan.remove == () and plan.missing == ()
    assert plan.end_sessions == () and plan.changes


def test_in_sync_means_nothing_to_do():
    plan = plan_membership(DataPermitPhase.ACTIVE, ["rita", "bob"], {"rita": RITA, "bob": BOB}, [BOB, RITA])
    assert not plan.changes and plan.end_sessions == ()


def test_a_member_dropped_from_the_permit_is_removed_and_loses_the_hub_session():
    plan = plan_membership(DataPermitPhase.ACTIVE, ["rita"], {"rita": RITA}, [RITA, BOB])
    assert plan.add == () and plan.remove == (BOB,) and plan.end_sessions == (BOB,)


def test_an_unknown_member_is_named_and_the_others_still_sync():
    plan = plan_membership(DataPermitPhase.ACTIVE, ["rita", "ghost", "bob"], {"rita": RITA, "ghost": None, "bob": BOB},
                           [RITA])
    assert plan.add == (BOB,) and plan.remove == () and plan.missing == ("ghost",)
    outcome = synced_outcome(plan, group="permit-p", realm="spe", phase=DataPermitPhase.ACTIVE, members=2, ended=0)
    assert outcome.status == "False" and outcome.reason == "MembersNotFound" and not outcome.retry
    assert "ghost" in outcome.message and "rita" not in outcome.message and outcome.group == "permit-p"


def test_someone_added_by_hand_in_keycloak_is_taken_out():
    plan = plan_membership(DataPermitPhase.ACTIVE, ["rita"], {"rita": RITA}, [RITA, ANN])
    assert plan.remove == (ANN,)


@pytest.mark.parametrize("phase", [DataPermitPhase.SUSPENDED, DataPermitPhase.EXPIRED, DataPermitPhase.REVOKED])
def test_a_stopped_permit_empties_the_group_and_ends_every_members_hub_session(phase):
    plan = plan_membership(phase, ["rita", "bob"], {}, [RITA, BOB])
    assert plan.add == () and plan.remove == (BOB, RITA) and plan.end_sessions == (BOB, RITA)
    assert not plan.keeps_members and plan.missing == ()
    outcome = synced_outcome(plan, group="permit-p", realm="spe", phase=phase, members=0, ended=3)
    assert outcome.status == "True" and outcome.reason == "GroupEmptied"
    assert phase.value in outcome.message and "3 hub session(s)" in outcome.message


def test_an_emptied_group_stays_empty_without_ending_sessions_again():
    plan = plan_membership(DataPermitPhase.REVOKED, ["rita"], {}, [])
    assert not plan.changes and plan.end_sessions == ()


def test_a_pending_permit_already_holds_its_members():
    plan = plan_membership(DataPermitPhase.PENDING, ["rita"], {"rita": RITA}, [])
    assert plan.add == (RITA,)


def test_the_same_person_named_twice_by_username_and_email_is_added_once():
    plan = plan_membership(DataPermitPhase.ACTIVE, ["rita", "rita@x.test"], {"rita": RITA, "rita@x.test": RITA}, [])
    assert plan.add == (RITA,)


def test_outcomes_of_failures_retry_and_keep_the_recorded_group():
    down = unreachable_outcome(url="http://kc", group="permit-p", error="refused", recorded_group="permit-p")
    assert (down.status, down.reason, down.retry, down.group) == ("False", "IdentityProviderUnreachable", True,
                                                                  "permit-p")
    assert "http://kc" in down.message and "refused" in down.message
    refused = error_outcome(client="spe-operator", group="permit-p", error="HTTP 403", recorded_group=None)
    assert refused.reason == "IdentityProviderError" and "manage-users" in refused.message and refused.retry
    off = not_configured_outcome()
    assert (off.status, off.reason, off.group) == ("Unknown", "IdentityProviderNotConfigured", None)


def test_backoff_doubles_up_to_a_minute():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(30) == 60.0


def test_with_identity_sets_the_condition_and_the_group():
    outcome = synced_outcome(plan_membership(DataPermitPhase.ACTIVE, ["rita"], {"rita": RITA}, []),
                             group="permit-p", realm="spe", phase=DataPermitPhase.ACTIVE, members=1, ended=0)
    status = with_identity(DataPermitStatus(), outcome, 3, NOW)
    (cond,) = status.conditions
    assert (cond.type, cond.status.value, cond.reason, cond.observed_generation) == ("IdentitySynced", "True",
                                                                                     "GroupSynced", 3)
    assert status.group == "permit-p"


def test_group_names():
    assert permit_group("lung-ct") == "permit-lung-ct"
    assert parse_permit_group("/permit-lung-ct") == "lung-ct" and parse_permit_group("permit-x") == "x"
    assert parse_permit_group("admins") is None and parse_permit_group("permit-") is None


def test_identity_sync_is_on_only_with_a_url_and_a_secret_and_the_secret_is_not_shown():
    assert not SpeSettings().identity_configured
    assert not SpeSettings(keycloak_url="http://kc").identity_configured
    on = SpeSettings.from_env({"SPE_KEYCLOAK_URL": "http://kc", "SPE_KEYCLOAK_CLIENT_SECRET": "s3cret-value"})
    assert on.identity_configured and on.keycloak_client_secret.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(on) and "s3cret-value" not in str(on.model_dump())
