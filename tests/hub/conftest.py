"""Fixtures of the hub tests: the workspace tests' cluster objects, the hub's own identity."""

from __future__ import annotations

import html
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from spe_dev.servers import LOOPBACK, free_port, repo_root, stop, wait_http
from tests.fixtures.hub import CHP_BIN
from tests.fixtures.operator import service_account_kubeconfig
# The workspace area's fixtures (an approved Tool, a Ready Dataset, a fresh Active permit per test).
from tests.workspace.conftest import dataset_name, kube, suffix, tool_name, ws_env  # noqa: F401

HUB_SA = ("spe-system", "spe-hub")
AUTH_REFRESH_AGE = 5  # seconds (60 in production): how stale a session's membership check may be


@pytest.fixture(scope="session")
def hub_kubeconfig(cluster, operator_kubeconfig, tmp_path_factory) -> str:
    """A kubeconfig with a token of the hub's ServiceAccount (manifests/base RBAC, applied by the
    operator fixture; the per-permit RoleBinding is the operator's): the tests prove it sufficient."""
    path = tmp_path_factory.mktemp("hub-identity") / "spe-hub.kubeconfig"
    return str(service_account_kubeconfig(cluster, *HUB_SA, path))


@dataclass
class SpeHub:
    url: str        # the proxy's public URL
    api_url: str
    service_token: str
    log: Path

    user_password: str = ""

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"token {token or self.service_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, trust_env=False)

    def login(self, username: str) -> tuple[httpx.Client, httpx.Response]:
        """Sign in through Keycloak's login form as a browser does (cookies, redirects); returns the
        client (holding the hub's session cookie) and the hub's answer to the OAuth callback."""
        client = httpx.Client(base_url=self.url, timeout=60.0, trust_env=False, follow_redirects=True)
        page = client.get("/hub/oauth_login?next=/hub/workspaces")
        assert page.status_code == 200 and "kc-form-login" in page.text, page.text[-1500:]
        action = html.unescape(re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text, re.S)[1])
        # Keycloak marks its login cookies Secure; a browser sends them to 127.0.0.1 over plain
        # HTTP (a potentially trustworthy origin), httpx does not: treat them as a browser does.
        for cookie in client.cookies.jar:
            cookie.secure = False
        answer = client.post(action, data={"username": username, "password": self.user_password,
                                           "credentialId": ""})
        assert str(answer.url).startswith(self.url), \
            f"Keycloak did not send {username} back to the hub: {answer.status_code} {answer.url} {answer.text[-1500:]}"
        return client, answer

    def token_for(self, name: str) -> str:
        """An API token of user ``name`` (created if needed), to call the hub's pages as them."""
        with httpx.Client(base_url=self.api_url, headers={"Authorization": f"token {self.service_token}"},
                          timeout=30.0, trust_env=False) as api:
            if api.get(f"/users/{name}").status_code == 404:
                assert api.post(f"/users/{name}").status_code in (201, 409)
            r = api.post(f"/users/{name}/tokens", json={"note": "spe hub tests", "expires_in": 3600})
            assert r.status_code in (200, 201), r.text
            return r.json()["token"]


HUB_TEST_CONFIG = """
from spe_workspace.hub.config import HubSettings, configure
c = get_config()  # noqa: F821
configure(c, HubSettings(**{settings!r}))
c.JupyterHub.services = [{{"name": "spe-tests", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "spe-tests", "services": ["spe-tests"],
                             "scopes": ["admin:users", "tokens", "read:users", "admin:servers"]}}]
"""


@pytest.fixture(scope="session")
def spe_hub(hub_kubeconfig, keycloak, tmp_path_factory) -> Iterator[SpeHub]:
    """JupyterHub configured by ``spe_workspace.hub.config.configure`` (the image's configuration),
    as the hub's ServiceAccount, with configurable-http-proxy from .cache/chp, logging in through
    the session's Keycloak (realm spe, client spe-hub)."""
    root = repo_root()
    chp = root / CHP_BIN
    if not chp.exists():
        pytest.fail(f"configurable-http-proxy missing at {chp}: run scripts/deps.d/configurable-http-proxy.sh",
                    pytrace=False)
    work = tmp_path_factory.mktemp("spe-hub")
    (work / "client-secret").write_text(keycloak.hub_client_secret)
    proxy, hub, proxy_api = free_port(), free_port(), free_port()
    keycloak.allow_redirect(f"http://{LOOPBACK}:{proxy}/hub/oauth_callback", client_id="spe-hub")
    token = secrets.token_hex(32)
    settings = dict(oidc_issuer=keycloak.issuer, oidc_client_secret_file=str(work / "client-secret"),
                    public_url=f"http://{LOOPBACK}:{proxy}", bind_url=f"http://{LOOPBACK}:{proxy}",
                    hub_bind_url=f"http://{LOOPBACK}:{hub}", hub_connect_url=f"http://{LOOPBACK}:{hub}",
                    proxy_api_url=f"http://{LOOPBACK}:{proxy_api}", proxy_should_start=True,
                    proxy_command=str(chp), data_dir=str(work), kubeconfig=hub_kubeconfig,
                    auth_refresh_age=AUTH_REFRESH_AGE)
    (work / "jupyterhub_config.py").write_text(HUB_TEST_CONFIG.format(settings=settings, token=token))
    env = {"PATH": f"{chp.parent}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(work),
           "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32), "NO_PROXY": "127.0.0.1,localhost"}
    log = work / "jupyterhub.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(work / "jupyterhub_config.py")],
                                cwd=work, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        api_url = f"http://{LOOPBACK}:{hub}/hub/api"
        wait_http(api_url + "/", timeout=90, proc=proc, log=log, ok=lambda r: r.status_code == 200)
        yield SpeHub(url=f"http://{LOOPBACK}:{proxy}", api_url=api_url, service_token=token, log=log,
                     user_password=keycloak.user_password)
    finally:
        stop(proc)
