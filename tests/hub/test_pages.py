"""The hub's home page, as JupyterHub serves it with the SPE configuration (through the proxy):
exactly the workspaces of active permits naming the user; a clear 403 for everyone else."""

from __future__ import annotations

import re
import time

import pytest

from spe_api.hubserver import hub_server_name

pytestmark = [pytest.mark.hub, pytest.mark.timeout(900)]  # the first test waits for Keycloak and the cluster


def _listed(html: str) -> set[str]:
    return set(re.findall(r'class="spe-workspace" data-server-name="([^"]+)"', html))


@pytest.fixture
def two_permits(ws_env, kube, tool_name, dataset_name):
    """Permit A names rita and alice (workspace ws for rita, hers for alice); a second, suspended
    permit B names rita too (its workspace must not be listed)."""
    ws_env.create_permit(members=["rita", "alice@example.org"])
    body = ws_env.workspace("ws", members=["rita"])
    body["spec"]["displayName"] = "Prostate MR study"
    kube.create(body)
    kube.create(ws_env.workspace("hers", members=["alice@example.org"]))
    from tests.workspace.conftest import PermitEnv
    other = PermitEnv(kube, ws_env.permit + "b", tool_name, dataset_name)
    other.create_permit(members=["rita"])
    kube.create(other.workspace("ws", members=["rita"]))
    kube.patch(f"/apis/spe.ehds.io/v1alpha1/datapermits/{other.permit}",
               {"spec": {"suspended": True, "suspensionReason": "data holder's audit"}})
    yield ws_env, other
    other.cleanup()


def _wait_phase(kube, path: str, phase: str) -> None:
    from tests.workspace.helpers import wait_for
    wait_for(f"{path} {phase}", lambda: (kube.get_or_none(path) or {}).get("status", {}).get("phase") == phase,
             timeout=30)


def test_home_lists_exactly_the_users_workspaces_and_makes_them_named_servers(spe_hub, two_permits, kube):
    mine, suspended = two_permits
    _wait_phase(kube, f"/apis/spe.ehds.io/v1alpha1/datapermits/{suspended.permit}", "Suspended")
    http, r = spe_hub.login("rita")
    assert r.status_code == 200 and str(r.url).endswith("/hub/workspaces"), (r.url, r.text[-2000:])
    again = http.get("/hub/workspaces")
    http.close()
    assert again.status_code == 200 and _listed(again.text) == _listed(r.text)
    listed = {n for n in _listed(r.text) if n.startswith((mine.namespace + ".", suspended.namespace + "."))}
    assert listed == {hub_server_name(mine.namespace, "ws")}
    assert "Prostate MR study" in r.text and "/hub/spawn/rita/" + hub_server_name(mine.namespace, "ws") in r.text
    with spe_hub.http() as api:
        servers = api.get(f"{spe_hub.api_url}/users/rita", params={"include_stopped_servers": "1"}).json()["servers"]
    assert hub_server_name(mine.namespace, "ws") in servers
    assert hub_server_name(mine.namespace, "hers") not in servers


def test_non_member_gets_a_clear_403(spe_hub, two_permits):
    http, r = spe_hub.login("nora")
    assert r.status_code == 403, (r.url, r.text[-2000:])
    assert "no active data permit names you" in r.text
    assert "Ask the data access body" in r.text
    # no session was opened: the SPE home asks for a login again
    assert "/hub/login" in str(http.get("/hub/workspaces", follow_redirects=False).headers.get("location", ""))
    http.close()


def test_hub_home_leads_to_the_workspaces_page(spe_hub, two_permits):
    http, r = spe_hub.login("rita")
    home = http.get("/hub/home")
    http.close()
    assert home.status_code == 200
    assert 'url=/hub/workspaces' in home.text


def test_a_permit_that_ends_signs_its_members_out(spe_hub, two_permits, kube):
    from .conftest import AUTH_REFRESH_AGE
    mine, _ = two_permits
    http, r = spe_hub.login("rita")
    assert r.status_code == 200, (r.url, r.text[-1000:])
    kube.patch(f"/apis/spe.ehds.io/v1alpha1/datapermits/{mine.permit}",
               {"spec": {"suspended": True, "suspensionReason": "data holder's audit"}})
    _wait_phase(kube, f"/apis/spe.ehds.io/v1alpha1/datapermits/{mine.permit}", "Suspended")
    started = time.monotonic()
    time.sleep(AUTH_REFRESH_AGE + 1)
    # the session's next refresh asks the API again: no active permit, so the hub signs rita out
    after = http.get("/hub/workspaces", follow_redirects=False)
    http.close()
    assert after.status_code == 302 and "/hub/login" in after.headers["location"], (after.status_code, after.text[-500:])
    print(f"signed out {time.monotonic() - started:.1f}s after the permit was suspended")
