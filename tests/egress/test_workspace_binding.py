"""Exports are bound to the workspace whose server holds the token, not only to the user.

The hub gives a Workspace's server a token scoped to that one server
(``access:servers!server=<user>/<namespace>.<workspace>``); the gateway takes namespace and
workspace from it. A researcher who is a member of two permits cannot file permit A's results
under permit B's policy, nor follow B's requests from A's notebook.
"""

from __future__ import annotations

import httpx
import pytest

from spe_api.hubserver import hub_server_name
from spe_egress.checks_adapter import Thresholds
from spe_egress.hub_auth import HubAuthError, bound_server, identity_from_model
from spe_egress.store import ExportPolicy, MemoryStore, PermitInfo, WorkspaceInfo

from .conftest import RESEARCHER, start_gateway
from .helpers import SAFE_CSV, run_cli

pytestmark = pytest.mark.egress

# rita is a member of two Active permits; B's policy is laxer (bigger files, one reviewer)
NS_A, WS_A, NS_B, WS_B = "spe-pa", "ws-a", "spe-pb", "ws-b"
JUST = "Aggregate counts for the paper's table 1."


def _two_permit_store() -> MemoryStore:
    store = MemoryStore()
    strict = ExportPolicy(reviewers_required=2, retention_days=30,
                          thresholds=Thresholds(allowed_types=["csv"], max_file_bytes=1024, min_cell_count=10))
    lax = ExportPolicy(reviewers_required=1, retention_days=30,
                       thresholds=Thresholds(allowed_types=["csv", "bin"], max_file_bytes=10 ** 7, min_cell_count=3))
    store.add_permit(PermitInfo(name="pa", phase="Active", members=frozenset({RESEARCHER}),
                                reviewers=frozenset({"rev-ada", "rev-bob"}), policy=strict))
    store.add_permit(PermitInfo(name="pb", phase="Active", members=frozenset({RESEARCHER}),
                                reviewers=frozenset({"rev-ada"}), policy=lax))
    store.add_workspace(WorkspaceInfo(NS_A, WS_A, "pa"))
    store.add_workspace(WorkspaceInfo(NS_B, WS_B, "pb"))
    return store


@pytest.fixture
def two_permits(hub, tmp_path):
    gw = start_gateway(tmp_path, _two_permit_store(), hub_api_url=hub.api_url)
    try:
        yield gw
    finally:
        gw.server.stop()


# --- the rule, on the hub's answers -------------------------------------------------------------

SERVER = "access:servers!server=rita/spe-pa.ws-a"


@pytest.mark.parametrize("scopes, server", [
    ([SERVER, "users:activity!user=rita", "read:users:activity!user=rita"], "spe-pa.ws-a"),
    ([SERVER, "read:users:name!user=rita"], "spe-pa.ws-a"),
    ([SERVER, SERVER], "spe-pa.ws-a"),
])
def test_a_server_token_is_bound_to_its_one_server(scopes, server):
    assert bound_server("rita", scopes) == server


@pytest.mark.parametrize("scopes, why", [
    (["users:activity!user=rita"], "no server"),                                   # no access scope
    (["access:servers!user=rita", "read:users!user=rita"], "more than one"),        # the user's own token
    (["access:servers"], "more than one"),                                         # an admin's token
    ([SERVER, "access:servers!user=rita"], "more than one"),                       # broader as well
    (["access:servers!server=bob/spe-pa.ws-a"], "more than one"),                  # someone else's server
    (["access:servers!group=permit-pa"], "more than one"),
    ([SERVER, "access:servers!server=rita/spe-pb.ws-b"], "2 servers"),            # two servers
])
def test_a_token_not_bound_to_one_of_its_own_servers_is_refused(scopes, why):
    with pytest.raises(HubAuthError) as e:
        bound_server("rita", scopes)
    assert e.value.status == 403 and e.value.code == "not_workspace_token" and why in e.value.message
    assert "JUPYTERHUB_API_TOKEN" in e.value.message


def test_identity_comes_from_the_server_name():
    who = identity_from_model({"kind": "user", "name": "rita", "scopes": [SERVER]})
    assert (who.user, who.namespace, who.workspace, who.server) == ("rita", "spe-pa", "ws-a", "spe-pa.ws-a")
    assert who.server == hub_server_name(who.namespace, who.workspace)
    with pytest.raises(HubAuthError) as e:  # a server the hub's spawner did not name for a Workspace
        identity_from_model({"kind": "user", "name": "rita", "scopes": ["access:servers!server=rita/lab"]})
    assert e.value.status == 403 and "not a workspace's server" in e.value.message
    with pytest.raises(HubAuthError) as e:  # a service's token
        identity_from_model({"kind": "service", "name": "spe-tests", "scopes": [SERVER]})
    assert e.value.status == 401


def test_the_hub_reports_a_server_tokens_one_server(hub):
    """What JupyterHub's GET /hub/api/user answers for a token with the server role's scopes:
    the rule above reads exactly this."""
    token = hub.server_token(RESEARCHER, NS_A, WS_A)
    with httpx.Client(trust_env=False) as http:
        model = http.get(f"{hub.api_url}/user", headers={"Authorization": f"token {token}"}).json()
        own = http.get(f"{hub.api_url}/user", headers={"Authorization": f"token {hub.token_for(RESEARCHER)}"}).json()
    assert model["name"] == RESEARCHER and f"access:servers!server={RESEARCHER}/{NS_A}.{WS_A}" in model["scopes"]
    assert not [s for s in model["scopes"] if s.startswith("access:servers") and "!server=" not in s]
    assert identity_from_model(model).workspace == WS_A
    # the user's own token (role "token": inherit) reaches every server of the user: not bound
    assert f"access:servers!user={RESEARCHER}" in own["scopes"]
    with pytest.raises(HubAuthError):
        identity_from_model(own)


# --- the gateway ------------------------------------------------------------------------------------

def _denied(gw, code: str) -> list[dict]:
    return [e for e in gw.audit() if e["action"] == "export.denied" and e["details"].get("code") == code]


def test_a_member_of_two_permits_cannot_file_a_results_under_b(two_permits, hub, tmp_path):
    gw = two_permits
    token_a = hub.server_token(RESEARCHER, NS_A, WS_A)
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)

    # spe-export in A's notebook, told (flags or environment) to file under B: refused, audited
    code, _, err = run_cli(gw, token_a, "request", str(f), "--justification", JUST, namespace=NS_B, workspace=WS_B)
    assert code == 4, err
    assert f"belongs to workspace {NS_A}/{WS_A}" in err and f"{NS_B}/{WS_B}" in err and "wrong_workspace" in err
    # a hand-made request naming B, with A's token: refused before a byte is stored
    big = SAFE_CSV * 100  # over A's 1 KiB per file, within B's policy
    with httpx.Client(base_url=gw.url, headers={"Authorization": f"token {token_a}"}, trust_env=False) as http:
        r = http.post("/api/v1/requests", data={"namespace": NS_B, "workspace": WS_B, "justification": JUST},
                      files=[("file", ("t.csv", big))])
        assert r.status_code == 403 and r.json()["error"] == "wrong_workspace", r.text
        assert f"belongs to workspace {NS_A}/{WS_A}" in r.json()["message"]
        r = http.post("/api/v1/requests", data={"workspace": WS_B, "justification": JUST},
                      files=[("file", ("t.csv", big))])
        assert r.status_code == 403 and r.json()["error"] == "wrong_workspace"
        r = http.get(f"/api/v1/workspaces/{NS_B}/{WS_B}/policy")
        assert r.status_code == 403 and r.json()["error"] == "wrong_workspace"
        # without naming a workspace, the request is A's, under A's (strict) policy
        r = http.post("/api/v1/requests", data={"justification": JUST}, files=[("file", ("t.csv", big))])
        assert r.status_code == 413 and r.json()["error"] == "file_too_large" and "permit pa" in r.json()["message"]
        pol = http.get("/api/v1/policy").json()
        assert (pol["namespace"], pol["workspace"], pol["permit"], pol["maxFileBytes"]) == (NS_A, WS_A, "pa", 1024)
    assert gw.call(gw.store.list_reviews()) == []
    denied = _denied(gw, "wrong_workspace")
    assert len(denied) >= 3 and all(e["details"]["boundTo"] == f"{NS_A}/{WS_A}" for e in denied)
    assert f"{NS_B}/{WS_B}" in {e["target"] for e in denied}

    # no workspace named at all: spe-export files under the token's workspace
    code, out, err = run_cli(gw, token_a, "request", str(f), "--justification", JUST, namespace="", workspace="")
    assert code == 0, err
    rid = out.split()[2].rstrip(":")
    obj = gw.wait_phase(rid, {"AwaitingReview"})
    assert obj["metadata"]["namespace"] == NS_A and obj["spec"]["workspace"] == WS_A
    assert obj["status"]["permit"] == "pa" and obj["status"]["reviewersRequired"] == 2


def test_a_workspaces_requests_are_followed_only_from_its_own_server(two_permits, hub, tmp_path):
    gw = two_permits
    token_a, token_b = hub.server_token(RESEARCHER, NS_A, WS_A), hub.server_token(RESEARCHER, NS_B, WS_B)
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    code, out, err = run_cli(gw, token_a, "request", str(f), "--justification", JUST, namespace=NS_A, workspace=WS_A)
    assert code == 0, err
    rid_a = out.split()[2].rstrip(":")
    code, out, err = run_cli(gw, token_b, "request", str(f), "--justification", JUST, namespace=NS_B, workspace=WS_B)
    assert code == 0, err
    rid_b = out.split()[2].rstrip(":")
    assert gw.wait_phase(rid_b, {"AwaitingReview"})["status"]["permit"] == "pb"
    gw.wait_phase(rid_a, {"AwaitingReview"})

    with httpx.Client(base_url=gw.url, headers={"Authorization": f"token {token_b}"}, trust_env=False) as http:
        assert [v["id"] for v in http.get("/api/v1/requests").json()["items"]] == [rid_b]
        for r in (http.get(f"/api/v1/requests/{rid_a}"), http.post(f"/api/v1/requests/{rid_a}/withdraw"),
                  http.post(f"/api/v1/requests/{rid_a}/resubmit", data={"justification": JUST},
                            files=[("file", ("t.csv", SAFE_CSV))])):
            assert r.status_code == 403 and r.json()["error"] == "wrong_workspace", r.text
            assert f"belongs to workspace {NS_B}/{WS_B}" in r.json()["message"]
    assert gw.call(gw.store.find_review(rid_a))["status"]["phase"] == "AwaitingReview"  # untouched
    code, out, _ = run_cli(gw, token_a, "status", namespace="", workspace="")
    assert code == 0 and rid_a in out and rid_b not in out


def test_tokens_not_bound_to_a_workspace_server_are_refused(two_permits, hub, tmp_path):
    gw = two_permits
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    # the user's own token (what a browser session or `jupyterhub token` gives): any server of hers
    code, _, err = run_cli(gw, hub.token_for(RESEARCHER), "request", str(f), "--justification", JUST,
                           namespace=NS_A, workspace=WS_A)
    assert code == 4 and "more than one notebook server" in err and "not_workspace_token" in err
    with httpx.Client(base_url=gw.url, trust_env=False,
                      headers={"Authorization": f"token {hub.token_for(RESEARCHER)}"}) as http:
        r = http.get("/api/v1/requests")
        assert r.status_code == 403 and r.json()["error"] == "not_workspace_token"
    assert gw.call(gw.store.list_reviews()) == []
