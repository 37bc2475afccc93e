"""The researcher's journey in headless Chromium, everything on the real node except Keycloak.

The hub, its proxy and the egress gateway run as pods from the images built here
(tests/hub/on_node.py), the workspace is the operator's own pod with the dataset mounted
read-only, and the browser reaches the proxy and the gateway through `kubectl port-forward`.
Keycloak runs as a host process (its image would be heavier than the rest together); the pods
reach it through a relay on spe-dev's end of the node link, the browser at its own address, and
the hub and gateway are told both (their ``*_OIDC_INTERNAL_ISSUER``).

rita logs in -> sees her workspace and not nora's -> starts it -> JupyterLab -> a cell lists
/data/<dataset> and cannot write there -> `spe-export request` -> rev-ada and rev-bob approve on
the gateway's page -> rita downloads the bundle -> the permit is revoked: her session ends, the
server stops and the hub says why. Screenshots and the timings go to .cache/artefacts/journey/.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from spe_api.hubserver import hub_server_name
from spe_dev.servers import free_port, stop
from tests.fixtures.waiting import wait_for
from tests.node.conftest import node_env, real_node  # noqa: F401 - fixtures

from .browser_steps import Shots, artefacts_dir, export_approved_and_downloaded, keycloak_login, look_at_data
from .on_node import SystemPods, port_forward

pytestmark = [pytest.mark.hub, pytest.mark.node, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
RESEARCHER, OTHER, REVIEWERS = "rita", "nora", ("rev-ada", "rev-bob")
UI_TIMEOUT_MS = 300_000   # a first JupyterLab start on two busy cores


@pytest.fixture
def pod_issuer(cluster, keycloak):
    """Keycloak's realm as pods reach it: a relay on spe-dev's end of the node link."""
    ip, port = cluster.settings.node_plan.outer_ip, free_port()
    kc = urlsplit(keycloak.url)
    proc = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind={ip},fork,reuseaddr", f"TCP:{kc.hostname}:{kc.port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for("the Keycloak relay", lambda: httpx.get(f"http://{ip}:{port}/realms/{keycloak.realm}",
                                                          timeout=5, trust_env=False).status_code == 200,
                 timeout=30, retry_on=(httpx.HTTPError,))
        yield f"http://{ip}:{port}/realms/{keycloak.realm}"
    finally:
        stop(proc)


@pytest.fixture
def artefacts() -> Path:
    return artefacts_dir("journey")


@pytest.fixture
def service_dns(cluster):
    """Cluster DNS for the hub pod (the test cluster has none), on spe-dev's end of the node link."""
    from spe_dev.servicedns import ServiceDns
    server = ServiceDns(cluster.api(), cluster.settings.node_plan.outer_ip).start()
    try:
        yield server.host
    finally:
        server.stop()


@pytest.fixture
def spe_front(cluster, real_node, node_env, keycloak, pod_issuer, service_dns, operator):  # noqa: F811
    """The hub, proxy and gateway pods, configured for this Keycloak; port-forwards to the proxy
    and the gateway at fixed local ports (the OAuth callbacks name them)."""
    hub_port, gw_port = free_port(), free_port()
    hub_url, gw_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{gw_port}"
    keycloak.allow_redirect(f"{hub_url}/hub/oauth_callback", client_id="spe-hub")
    keycloak.allow_redirect(f"{gw_url}/review/callback")
    system = SystemPods(cluster, real_node)
    forwards = []
    try:
        system.hub(oidc_client_secret=keycloak.hub_client_secret, dns=service_dns, config={
            "SPE_HUB_OIDC_ISSUER": keycloak.issuer, "SPE_HUB_OIDC_INTERNAL_ISSUER": pod_issuer,
            "SPE_HUB_PUBLIC_URL": hub_url, "SPE_HUB_AUTH_REFRESH_AGE": "5"})
        system.gateway(oidc_client_secret=keycloak.client_secret, config={
            "SPE_EGRESS_PUBLIC_URL": gw_url, "SPE_EGRESS_OIDC_ISSUER": keycloak.issuer,
            "SPE_EGRESS_OIDC_INTERNAL_ISSUER": pod_issuer})
        pods = system.wait_ready("spe-hub", "spe-proxy", "spe-egress", timeout=300)
        for name, port, local in (("spe-proxy", 8000, hub_port), ("spe-egress", 8080, gw_port)):
            forwards.append(port_forward(cluster, f"pod/{pods[name]['metadata']['name']}", port, local)[0])
        wait_for("the hub through the proxy", lambda: httpx.get(f"{hub_url}/hub/health", timeout=5,
                                                                 trust_env=False).status_code == 200,
                 timeout=120, retry_on=(httpx.HTTPError,))
        yield hub_url, gw_url, system
    finally:
        for proc in forwards:
            proc.terminate()
            proc.wait(timeout=10)
        system.cleanup()


def _permit_path(ns: str) -> str:
    return f"/apis/spe.ehds.io/v1alpha1/datapermits/{ns.removeprefix('spe-')}"


async def test_researcher_journey_login_to_download_then_revocation(cluster, node_env, keycloak, spe_front,
                                                                     browser, artefacts):
    hub_url, gw_url, system = spe_front
    kube = node_env.kube
    policy = {"reviewersRequired": 2, "reviewers": list(REVIEWERS)}
    mine = node_env.permit(members=[RESEARCHER], export_policy=policy)
    theirs = node_env.permit(members=[OTHER], export_policy=policy)
    node_env.workspace(mine, members=[RESEARCHER], running=False)
    node_env.workspace(theirs, members=[OTHER], running=False)
    server = hub_server_name(mine, "ws")
    shots = Shots(artefacts)
    timings: dict[str, float] = {}

    ctx = await browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = await ctx.new_page()
    try:
        # --- log in through Keycloak; the hub lists exactly rita's workspace ---
        t_login = time.monotonic()
        await page.goto(f"{hub_url}/hub/oauth_login?next=/hub/workspaces")
        assert page.url.startswith(keycloak.issuer), page.url
        await shots.take(page, "keycloak-login")
        await keycloak_login(page, RESEARCHER, keycloak.user_password)
        await page.wait_for_url(f"{hub_url}/hub/workspaces", timeout=60_000)
        timings["login_s"] = round(time.monotonic() - t_login, 1)
        await shots.take(page, "workspaces")
        listed = set(await page.locator(".spe-workspace").evaluate_all(
            "els => els.map(e => e.dataset.serverName)"))
        assert server in listed, listed
        assert not [n for n in listed if n.startswith(theirs + ".")], listed

        # --- start the workspace: JupyterLab from the operator's pod on the real node ---
        t_start = time.monotonic()
        await page.click(f'a[href*="/hub/spawn/{RESEARCHER}/{server}"]')
        await page.wait_for_url(re.compile(rf".*/user/{RESEARCHER}/{re.escape(server)}/lab.*"), timeout=UI_TIMEOUT_MS)
        await page.wait_for_selector(".jp-Launcher", timeout=UI_TIMEOUT_MS)
        timings["start_to_jupyterlab_s"] = round(time.monotonic() - t_start, 1)
        timings["login_to_jupyterlab_s"] = round(time.monotonic() - t_login, 1)
        await shots.take(page, "jupyterlab")
        pod = kube.get_or_none(f"/api/v1/namespaces/{mine}/pods/ws-0")
        assert pod["spec"]["nodeName"] == "spe-node-1"

        # --- a notebook: /data is there and read-only ---
        await page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
        await page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=120_000)
        await look_at_data(page, f"/data/{node_env.dataset}")
        await shots.take(page, "notebook-data-read-only")

        # --- spe-export from the notebook, two reviewers approve on the gateway's page, she downloads ---
        await export_approved_and_downloaded(browser, ctx, page, gw_url, REVIEWERS, keycloak.user_password, shots,
                                             artefacts / "bundle.zip")

        # --- revocation: the session ends, the server stops, the hub says why ---
        t_revoke = time.monotonic()
        kube.patch(_permit_path(mine), {"spec": {"revoked": True, "revocationReason": "consent withdrawn"}})

        def stopped():
            ws = kube.get_or_none(f"/apis/spe.ehds.io/v1alpha1/namespaces/{mine}/workspaces/ws") or {}
            gone = kube.get_or_none(f"/api/v1/namespaces/{mine}/pods/ws-0") is None
            return gone and (ws.get("status") or {}).get("phase") in ("Stopped", None)
        await asyncio.to_thread(wait_for, "the workspace's server stopped", stopped, timeout=180, interval=0.5)
        timings["revoke_to_server_stopped_s"] = round(time.monotonic() - t_revoke, 1)

        async def signed_out() -> bool:
            await page.goto(f"{hub_url}/hub/workspaces")
            return "/hub/login" in page.url
        deadline = time.monotonic() + 60
        while not await signed_out():
            assert time.monotonic() < deadline, page.url
            await asyncio.sleep(1)
        timings["revoke_to_session_ended_s"] = round(time.monotonic() - t_revoke, 1)
        await shots.take(page, "signed-out")
        # signing in again (Keycloak still knows her): the hub says why there is nothing for her
        answer = await page.goto(f"{hub_url}/hub/oauth_login?next=/hub/workspaces")
        if page.url.startswith(keycloak.issuer):
            await keycloak_login(page, RESEARCHER, keycloak.user_password)
            await page.wait_for_url(f"{hub_url}/**", timeout=60_000)
        body = await page.inner_text("body")
        assert "no active data permit names you" in body, (page.url, answer and answer.status, body[:2000])
        await shots.take(page, "why")
    except BaseException:
        await page.screenshot(path=str(artefacts / "failed.png"), full_page=True)
        print(system.diagnose("spe-hub", "spe-egress"))
        raise
    finally:
        (artefacts / "timings.json").write_text(json.dumps({**timings, "steps": shots.times}, indent=2))
        print("journey timings:", json.dumps(timings), "artefacts:", artefacts)
        await ctx.close()
