"""The hub's pure rules: who may use what, groups from the token, poll's mapping, the Secret."""

from __future__ import annotations

import pytest

from spe_api import DataPermit, Workspace
from spe_workspace.hub import catalogue
from spe_workspace.hub.auth import token_groups
from spe_workspace.hub.secret import build_hub_secret, credentials, hub_secret_name
from spe_workspace.hub.spawner import poll_status
from tests.workspace import factories as f

pytestmark = pytest.mark.hub


def _permit(name: str, members: list[str], phase: str | None) -> DataPermit:
    body = f.permit(name, members=members)
    if phase:
        body["status"] = {"phase": phase, "namespace": f"spe-{name}"}
    return DataPermit.from_manifest(body)


def _ws(name: str, permit: str, members: list[str], phase: str = "Stopped") -> Workspace:
    body = f.workspace(name, f"spe-{permit}", permit, members=members)
    body["status"] = {"phase": phase}
    return Workspace.from_manifest(body)


def test_identities_are_username_and_login_email_lower_case():
    who = catalogue.identities("Rita", {"oauth_user": {"email": "Rita@Example.org", "preferred_username": "rita"}})
    assert who == {"rita", "rita@example.org"}
    assert catalogue.identities("nora") == {"nora"}


def test_only_active_permits_naming_the_person_count():
    who = catalogue.identities("rita")
    permits = [_permit("a", ["rita"], "Active"), _permit("b", ["RITA"], "Active"), _permit("c", ["rita"], "Suspended"),
               _permit("d", ["rita"], "Expired"), _permit("e", ["alice"], "Active"), _permit("f", ["rita"], None)]
    assert [p.name for p in catalogue.permits_naming(permits, who)] == ["a", "b"]


def test_a_permits_workspace_must_name_the_person_too():
    permit = _permit("a", ["rita", "alice"], "Active")
    entries = catalogue.usable(permit, [_ws("mine", "a", ["rita"]), _ws("hers", "a", ["alice"]),
                                        _ws("ours", "a", ["alice", "Rita"], "Running"), _ws("x", "other", ["rita"])],
                               catalogue.identities("rita"))
    assert [(e.name, e.server_name, e.phase) for e in entries] == [
        ("mine", "spe-a.mine", "Stopped"), ("ours", "spe-a.ours", "Running")]


def test_groups_lose_keycloaks_leading_slash():
    assert token_groups({"oauth_user": {"groups": ["/permit-a", "permit-b", "/", "", 3]}}) == ["permit-a", "permit-b"]
    assert token_groups({"oauth_user": {}}) == []


@pytest.mark.parametrize(("ws", "expected"), [
    (None, 2),
    ({"spec": {"running": False}, "status": {"phase": "Running"}}, 0),
    ({"spec": {"running": True}, "status": {"phase": "Starting"}}, None),
    ({"spec": {"running": True}, "status": {"phase": "Running"}}, None),
    ({"metadata": {"generation": 3}, "spec": {"running": True}, "status": {"phase": "Blocked", "observedGeneration": 3}}, 1),
    # a Blocked status from before the hub's own change is not this start's answer yet
    ({"metadata": {"generation": 4}, "spec": {"running": True}, "status": {"phase": "Blocked", "observedGeneration": 3}}, None),
])
def test_poll_maps_the_workspace(ws, expected):
    assert poll_status(ws) == expected


def test_secret_holds_only_the_hubs_variables_and_is_owned_by_the_workspace():
    body = build_hub_secret("spe-a", "ws", "uid-1", {"JUPYTERHUB_API_TOKEN": "t", "PATH": "/bin", "SECRET_X": "y"})
    assert body["metadata"]["name"] == hub_secret_name("ws") == "ws-hub"
    assert body["stringData"] == {"JUPYTERHUB_API_TOKEN": "t"}
    assert body["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace", "name": "ws", "uid": "uid-1",
        "controller": False, "blockOwnerDeletion": False}
    assert credentials({"JUPYTERHUB_USER": "rita", "HOME": "/x"}) == {"JUPYTERHUB_USER": "rita"}


def test_operator_and_hub_agree_on_the_secrets_name():
    from spe_operator.workspaces.names import hub_secret_name as operators
    assert operators("ws") == hub_secret_name("ws")
