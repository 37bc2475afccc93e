"""WorkspaceSpawner against the test cluster: the operator runs the Workspace (kwok nodes), the
spawner only asks and watches, with the hub's own ServiceAccount."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from tornado import web

from spe_workspace.hub.spawner import ANNOTATION_LAST_ACTIVITY, WorkspaceSpawner
from jupyterhub.objects import Hub
from tests.workspace.helpers import ws_path

pytestmark = pytest.mark.hub


class FakeUser:
    """What the spawner reads of a hub user."""

    def __init__(self, name: str):
        self.name = self.escaped_name = name
        self.url = f"/user/{name}/"

    async def get_auth_state(self):
        return None

    def server_url(self, server_name: str) -> str:
        return f"/user/{self.name}/{server_name}/"


def make_spawner(user: str, server_name: str, kubeconfig: str) -> WorkspaceSpawner:
    orm = SimpleNamespace(name=server_name, last_activity=None, server=None, state=None, user=None)
    return WorkspaceSpawner(
        user=FakeUser(user), orm_spawner=orm, kubeconfig=kubeconfig, status_interval=0.3,
        hub=Hub(base_url="/hub/", connect_url="http://spe-hub.spe-system.svc:8081"),
        api_token="test-token-" + server_name, oauth_client_id=f"jupyterhub-user-{user}-{server_name}")


@pytest.fixture
def env(ws_env):
    ws_env.create_permit(members=["rita", "alice@example.org"])
    ws_env.kube.create(ws_env.workspace("ws", members=["rita"], datasets=[ws_env.dataset]))
    ws_env.kube.create(ws_env.workspace("hers", members=["alice@example.org"]))
    return ws_env


def _ws(env, name="ws") -> dict:
    return env.kube.get_or_none(ws_path(env.namespace, name))


async def _wait(pred, what: str, timeout: float = 60):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := pred()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)
    return found


async def test_start_progress_poll_stop(env, hub_kubeconfig):
    sp = make_spawner("rita", f"{env.namespace}.ws", hub_kubeconfig)
    assert await sp.poll() == 0, "a stopped Workspace is a stopped server"

    events: list[dict] = []

    async def follow():
        async for event in sp.progress():
            events.append(event)

    follower = asyncio.create_task(follow())
    url = await asyncio.wait_for(sp.start(), timeout=120)
    # the stream reads the Workspace on its own clock: give it one more read to see Running
    await _wait(lambda: any(e["message"].startswith("Running:") for e in events), "progress to report Running", 10)
    follower.cancel()

    ws = _ws(env)
    assert url == ws["status"]["url"] == f"http://ws.{env.namespace}.svc:8888"
    assert ws["spec"]["running"] is True
    assert [c for c in ws["status"]["conditions"] if c["type"] == "Ready"][0]["status"] == "True"
    # progress streamed the Workspace's own words, ending at Running
    assert events and all(set(e) == {"progress", "message"} for e in events)
    assert any(e["message"].startswith("Running:") and e["progress"] == 100 for e in events), events

    # the server's hub credentials are in the Workspace's hub Secret, owned by the Workspace
    secret = env.kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/secrets/ws-hub")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["JUPYTERHUB_API_TOKEN"] == f"test-token-{env.namespace}.ws"
    assert data["JUPYTERHUB_API_URL"] == "http://spe-hub.spe-system.svc:8081/hub/api"
    assert (data["JUPYTERHUB_USER"], data["JUPYTERHUB_CLIENT_ID"]) == ("rita", f"jupyterhub-user-rita-{env.namespace}.ws")
    assert all(k.startswith("JUPYTERHUB_") for k in data)
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Workspace", "ws", ws["metadata"]["uid"])

    # poll: running; the hub's activity is carried to the operator's idle clock
    seen = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
    sp.orm_spawner.last_activity = seen.replace(tzinfo=None)
    assert await sp.poll() is None
    annotations = _ws(env)["metadata"].get("annotations", {})
    assert annotations[ANNOTATION_LAST_ACTIVITY] == seen.strftime("%Y-%m-%dT%H:%M:%SZ")

    # a restart replaces the credentials (the hub issues a new token per start)
    sp.api_token = "second-token"
    await sp._write_secret(env.namespace, "ws", ws["metadata"]["uid"])
    secret = env.kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/secrets/ws-hub")
    assert base64.b64decode(secret["data"]["JUPYTERHUB_API_TOKEN"]).decode() == "second-token"

    await sp.stop()
    assert _ws(env)["spec"]["running"] is False
    assert env.kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/secrets/ws-hub") is None
    assert await sp.poll() == 0
    await _wait(lambda: (_ws(env).get("status") or {}).get("phase") == "Stopped", "phase Stopped")


async def test_a_workspace_started_outside_the_hub_is_restarted_with_its_credentials(env, hub_kubeconfig):
    """`kubectl patch ... running: true` (or a hub whose state is gone) leaves a server without
    this hub's token and paths: the hub restarts it rather than route to one it cannot reach."""
    env.kube.patch(ws_path(env.namespace, "ws"), {"spec": {"running": True}})
    pod_path = f"/api/v1/namespaces/{env.namespace}/pods/ws-0"
    first = await _wait(lambda: (_ws(env).get("status") or {}).get("phase") == "Running"
                        and env.kube.get_or_none(pod_path), "the Workspace running without the hub", 120)
    sp = make_spawner("rita", f"{env.namespace}.ws", hub_kubeconfig)
    await asyncio.wait_for(sp.start(), timeout=240)
    second = env.kube.get_or_none(pod_path)
    assert second and second["metadata"]["uid"] != first["metadata"]["uid"], "the server was not restarted"
    assert env.kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/secrets/ws-hub") is not None
    await sp.stop()


async def test_a_stop_by_the_operator_is_seen_by_poll(env, hub_kubeconfig):
    sp = make_spawner("rita", f"{env.namespace}.ws", hub_kubeconfig)
    await asyncio.wait_for(sp.start(), timeout=120)
    assert await sp.poll() is None
    # the permit is suspended: the operator stops the server itself
    env.kube.patch(f"/apis/spe.ehds.io/v1alpha1/datapermits/{env.permit}", {"spec": {"suspended": True, "suspensionReason": "audit of the data holder"}})
    await _wait(lambda: _ws(env)["spec"]["running"] is False, "the operator's stop", timeout=60)
    assert await sp.poll() == 0
    await sp.stop()  # what the hub does next: idempotent


async def test_start_refuses_a_workspace_that_does_not_name_the_user(env, hub_kubeconfig):
    sp = make_spawner("rita", f"{env.namespace}.hers", hub_kubeconfig)
    with pytest.raises(web.HTTPError) as err:
        await sp.start()
    assert err.value.status_code == 403
    assert "active data permit that names you" in err.value.log_message
    assert _ws(env, "hers")["spec"]["running"] is False
    assert env.kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/secrets/hers-hub") is None
    # and a name that is no workspace at all
    with pytest.raises(web.HTTPError) as err:
        await make_spawner("rita", "notebook", hub_kubeconfig).start()
    assert err.value.status_code == 404


async def test_progress_never_raises(hub_kubeconfig):
    sp = make_spawner("rita", "spe-nowhere.ws", hub_kubeconfig)
    # a namespace the hub may not read: the API's refusal becomes a message, not an exception
    first = await asyncio.wait_for(sp.progress().__anext__(), timeout=30)
    assert first["progress"] == 0 and "retrying" in first["message"]
