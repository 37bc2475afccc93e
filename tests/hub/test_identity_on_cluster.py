"""The permits' groups in a real Keycloak, kept by the operator on the real control plane: the
group and its members, edits, an unknown member, revocation ending a real hub session,
Keycloak unreachable (and back), deletion with and without Keycloak."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from spe_api import IDENTITY_FINALIZER, KEEP_GROUP_ANNOTATION
from tests.fixtures.operator import _SESSION, running_operator
from tests.fixtures.operator import test_settings as operator_settings
from tests.permits.conftest import API, Kube, permits, wait_for, world  # noqa: F401 - fixtures

from .keycloak_admin import Relay, add_to_group, delete_group, group_members, hub_login, hub_sessions, refresh

pytestmark = pytest.mark.hub

SYNCED = 30.0  # a first reconcile and sync on a busy 2-core machine
RETRY = 90.0   # back off up to a minute while Keycloak is away


@pytest.fixture(scope="module")
def relay(keycloak) -> Iterator[Relay]:
    host, port = keycloak.url.removeprefix("http://").rsplit(":", 1)
    relay = Relay(host, int(port))
    relay.restore()
    try:
        yield relay
    finally:
        relay.cut()


@pytest.fixture(scope="module")
def identity_operator(spe_crds, operator, keycloak, relay, operator_kubeconfig):
    """The operator with Keycloak configured (through the relay), in place of the session's."""
    paused = [s for s in _SESSION if s.running]
    for session in paused:
        session.stop()
    settings = operator_settings(kubeconfig=operator_kubeconfig, keycloak_url=relay.url, keycloak_realm=keycloak.realm,
                             keycloak_client_secret=keycloak.operator_client_secret, keycloak_timeout=3.0)
    try:
        with running_operator(settings):
            yield settings
            # this operator's permits are deleted by the tests' fixtures; let it finish removing
            # their groups (its finalizer) before the session's operator, without Keycloak, is back
            kube = Kube(spe_crds)
            wait_for("deleted permits' groups removed", lambda: not [p for p in kube.items(f"{API}/datapermits")
                                  if IDENTITY_FINALIZER in p["metadata"].get("finalizers", [])
                                  and p["metadata"].get("deletionTimestamp")],
                     SYNCED, interval=0.5)
    finally:
        for session in paused:
            session.start()


@pytest.fixture(scope="module")
def kube(spe_crds, identity_operator) -> Kube:
    kube = Kube(spe_crds)
    probe = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": "probe"},
             "spec": {"permitId": "probe", "purpose": "webhook readiness probe", "members": [{"subject": "a"}],
                      "datasets": ["none"], "notAfter": "2099-01-01T00:00:00Z"}}
    wait_for("the admission webhook to answer",
             lambda: kube.api.raw("POST", f"{API}/datapermits?dryRun=All", probe)[0] != 500, 30,
             interval=0.2)
    return kube


def _cond(obj: dict | None, type_: str) -> dict:
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def _identity(kube: Kube, name: str) -> dict:
    return _cond(kube.permit(name), "IdentitySynced")


def _events(kube: Kube, name: str, reason: str) -> list[dict]:
    """Events about permit ``name`` (cluster-scoped: they go to namespace default)."""
    selector = quote(f"involvedObject.name={name},reason={reason}")
    return kube.items(f"/api/v1/namespaces/default/events?fieldSelector={selector}")


def _members(*subjects: str) -> list[dict]:
    return [{"subject": s} for s in subjects]


def _synced(kube: Kube, keycloak, name: str, expected: set[str], reason: str = "GroupSynced") -> dict:
    wait_for(f"group permit-{name} == {expected} ({reason})", lambda: _identity(kube, name).get("reason") == reason
             and group_members(keycloak, f"permit-{name}") == expected,
             SYNCED, interval=0.25)
    return kube.permit(name)


def test_a_permit_gets_its_group_with_its_members_and_a_finalizer(kube, keycloak, permits):
    name = permits(members=_members("rita", "nora"))["metadata"]["name"]
    permit = _synced(kube, keycloak, name, {"rita", "nora"})
    cond = _cond(permit, "IdentitySynced")
    assert cond["status"] == "True" and f"permit-{name}" in cond["message"], cond
    assert permit["status"]["group"] == f"permit-{name}"
    assert IDENTITY_FINALIZER in permit["metadata"]["finalizers"]
    assert _cond(permit, "Ready")["status"] == "True"
    # what the hub will read: the group in the token of the hub's client, without a leading "/"
    assert f"permit-{name}" in hub_login(keycloak, "rita").groups


def test_editing_the_members_adds_and_removes_and_a_stranger_is_taken_out(kube, keycloak, permits):
    name = permits(members=_members("rita"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"rita"})
    kube.merge(f"{API}/datapermits/{name}", {"spec": {"members": _members("rita", "nora")}})
    _synced(kube, keycloak, name, {"rita", "nora"})
    login = hub_login(keycloak, "nora")
    kube.merge(f"{API}/datapermits/{name}", {"spec": {"members": _members("rita")}})
    _synced(kube, keycloak, name, {"rita"})
    # nora, dropped from the permit, lost her hub session too
    wait_for("nora's hub session ended", lambda: not hub_sessions(keycloak, "nora"), SYNCED, interval=0.25)
    assert refresh(keycloak, login).status_code == 400
    # someone put in the group by hand in Keycloak is taken out at the next periodic sync
    add_to_group(keycloak, "rev-ada", f"permit-{name}")
    _synced(kube, keycloak, name, {"rita"})


def test_an_unknown_member_is_named_while_the_others_sync(kube, keycloak, permits):
    # "rit" is a prefix of rita, "researcher@spe.test" the tail of two e-mails: a substring search
    # would have put rita (or nora) in for them. A member named by e-mail is found by it.
    name = permits(members=_members("rita", "rit", "nobody-such", "researcher@spe.test",
                                    "nora.researcher@spe.test"))["metadata"]["name"]
    permit = _synced(kube, keycloak, name, {"rita", "nora"}, reason="MembersNotFound")
    cond = _cond(permit, "IdentitySynced")
    assert cond["status"] == "False", cond
    assert "rit, nobody-such, researcher@spe.test." in cond["message"], cond
    assert "holds 2 member(s)" in cond["message"]
    assert _cond(permit, "Ready")["status"] == "True", "one unknown member never fails the permit"
    assert permit["status"]["phase"] == "Active"


def test_revocation_empties_the_group_and_ends_the_members_hub_sessions(kube, keycloak, permits, capsys, caplog):
    caplog.set_level(logging.INFO, logger="spe_operator.identity.sync")
    name = permits(members=_members("rita", "nora"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"rita", "nora"})
    logins = {who: hub_login(keycloak, who) for who in ("rita", "nora")}
    assert all(f"permit-{name}" in login.groups for login in logins.values())
    assert hub_sessions(keycloak, "rita") and hub_sessions(keycloak, "nora")

    started = time.monotonic()
    kube.merge(f"{API}/datapermits/{name}", {"spec": {"revoked": True, "revocationReason": "Test of revocation."}})
    wait_for("the members' hub sessions ended",
             lambda: not hub_sessions(keycloak, "rita") and not hub_sessions(keycloak, "nora"), SYNCED,
             interval=0.1)
    took = time.monotonic() - started
    ended = [r.getMessage() for r in caplog.records if "hub session(s)" in r.getMessage() and name in r.getMessage()]
    assert ended, "the operator logs how long ending the sessions took"
    with capsys.disabled():
        print(f"\nrevocation -> members' hub sessions gone: {took:.2f}s (operator: {ended[-1]})")
    assert group_members(keycloak, f"permit-{name}") == set()
    for who, login in logins.items():
        r = refresh(keycloak, login)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", (who, r.text)
    permit = _synced(kube, keycloak, name, set(), reason="GroupEmptied")
    cond = _cond(permit, "IdentitySynced")
    assert cond["status"] == "True" and "Revoked" in cond["message"] and "2 hub session(s)" in cond["message"], cond
    # logging in again gives a token without the permit's group
    assert f"permit-{name}" not in hub_login(keycloak, "rita").groups


def test_suspension_empties_the_group_and_resumption_fills_it(kube, keycloak, permits):
    name = permits(members=_members("nora"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"nora"})
    kube.merge(f"{API}/datapermits/{name}", {"spec": {"suspended": True, "suspensionReason": "Audit pending."}})
    _synced(kube, keycloak, name, set(), reason="GroupEmptied")
    kube.merge(f"{API}/datapermits/{name}", {"spec": {"suspended": False}})
    _synced(kube, keycloak, name, {"nora"})


def test_keycloak_unreachable_is_a_condition_that_blocks_nothing_and_is_retried(kube, keycloak, permits, relay):
    name = permits(members=_members("rita"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"rita"})
    relay.cut()
    try:
        kube.merge(f"{API}/datapermits/{name}", {"spec": {"members": _members("rita", "nora")}})
        wait_for("IdentitySynced False: unreachable",
                 lambda: _identity(kube, name).get("reason") == "IdentityProviderUnreachable", SYNCED,
                 interval=0.25)
        cond = _identity(kube, name)
        assert cond["status"] == "False" and relay.url in cond["message"] and "retries" in cond["message"], cond
        # a new permit meanwhile gets its namespace, policies and Ready all the same
        other = permits(members=_members("nora"))["metadata"]["name"]
        wait_for(f"permit {other} Ready without Keycloak",
                 lambda: _cond(kube.permit(other), "Ready").get("status") == "True"
                 and _identity(kube, other).get("reason") == "IdentityProviderUnreachable", SYNCED,
                 interval=0.25)
        assert kube.get(f"/api/v1/namespaces/spe-{other}") is not None
        assert _cond(kube.permit(name), "Ready")["status"] == "True"
    finally:
        relay.restore()
    # back: the retries (with backoff) catch up without any further edit
    _synced(kube, keycloak, name, {"rita", "nora"})
    _synced(kube, keycloak, other, {"nora"})


def test_deleting_a_permit_removes_its_group(kube, keycloak, permits):
    name = permits(members=_members("rita"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"rita"})
    kube.delete(f"{API}/datapermits/{name}")
    wait_for(f"permit {name} and group permit-{name} gone",
             lambda: kube.permit(name) is None and group_members(keycloak, f"permit-{name}") is None, SYNCED,
             interval=0.25)


def test_without_keycloak_deletion_waits_until_the_explicit_escape(kube, keycloak, permits, relay):
    name = permits(members=_members("rita"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"rita"})
    relay.cut()
    try:
        kube.delete(f"{API}/datapermits/{name}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # held by the finalizer while the group cannot be removed
            permit = kube.permit(name)
            assert permit is not None and permit["metadata"].get("deletionTimestamp"), permit
            time.sleep(0.5)
        held = wait_for("a Warning Event saying why the permit waits",
                        lambda: _events(kube, name, "IdentityProviderUnreachable"), SYNCED, interval=0.25)
        assert held[0]["type"] == "Warning" and KEEP_GROUP_ANNOTATION in held[0]["message"], held[0]
        kube.merge(f"{API}/datapermits/{name}", {"metadata": {"annotations": {KEEP_GROUP_ANNOTATION: "true"}}})
        wait_for(f"permit {name} let go", lambda: kube.permit(name) is None, SYNCED, interval=0.25)
    finally:
        relay.restore()
    (left,) = wait_for("the GroupLeftBehind Event", lambda: _events(kube, name, "GroupLeftBehind"), SYNCED)
    assert f"permit-{name} was NOT removed" in left["message"], left
    assert group_members(keycloak, f"permit-{name}") == {"rita"}, "the escape leaves the group, as it says"
    delete_group(keycloak, f"permit-{name}")


def test_the_operator_may_patch_a_permit_only_for_its_finalizer(kube, keycloak, permits, identity_operator, request):
    if request.config.getoption("--operator-identity") == "admin":
        pytest.skip("needs the operator's ServiceAccount token")
    from tests.permits.test_rbac import _operator_api  # noqa: PLC0415

    api = _operator_api(kube.cluster, identity_operator)
    name = permits(members=_members("rita"))["metadata"]["name"]
    _synced(kube, keycloak, name, {"rita"})
    path = f"{API}/datapermits/{name}?dryRun=All"
    merge = "application/merge-patch+json"
    for patch, words in (({"spec": {"members": _members("rita", "rev-ada")}}, "spec"),
                         ({"metadata": {"labels": {"x": "y"}}}, "labels or annotations"),
                         ({"metadata": {"finalizers": [IDENTITY_FINALIZER, "example.org/other"]}}, "only its own")):
        status, body = api.raw("PATCH", path, patch, merge)
        assert status in (403, 422) and "spe-operator-permit-finalizer-only" in str(body) and words in str(body), (
            patch, status, body)
    status, body = api.raw("PATCH", path, {"metadata": {"finalizers": []}}, merge)
    assert status == 200, (status, body)  # its own finalizer: allowed (dry run)
