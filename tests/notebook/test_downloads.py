"""Downloads are closed on the workspace's notebook server, server-side, and so through the proxy.

The server is the one the notebook image runs: ``images/notebook-jupyterlab/start-notebook.sh``
with the image's own configuration directory (``images/notebook-jupyterlab/jupyter``, installed
in the image as ``/opt/spe/etc/jupyter``), started the way a Workspace pod starts it: the hub's
credentials as files in the mounted Secret's directory, the hub's API address from the
operator's ``SPE_HUB_API_URL`` (the Secret's own address does not resolve in a workspace). It
runs ``jupyterhub-singleuser`` against the suite's real JupyterHub, behind a real
configurable-http-proxy, as the hub routes a named server (``/user/<user>/<server>/``).

Why server-side: configurable-http-proxy routes whole path prefixes to one target and cannot
filter inside them; the server's own routing table answers first for every request that
reaches it (and only the hub's proxy reaches a workspace: the permit's NetworkPolicies), so
the refusal is the server's, seen the same through the proxy.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from spe_api.hubserver import hub_server_name

from spe_dev.servers import LOOPBACK, free_port, repo_root, stop, wait_http

pytestmark = pytest.mark.hub

USER, NAMESPACE, WORKSPACE = "rita", "spe-p1", "ws1"
SERVER = hub_server_name(NAMESPACE, WORKSPACE)
PREFIX = f"/user/{USER}/{SERVER}/"
IMAGE_DIR = "images/notebook-jupyterlab"
CONFIG_DIR = f"{IMAGE_DIR}/jupyter"          # the image's /opt/spe/etc/jupyter
CHP_BIN = ".cache/chp/node_modules/.bin/configurable-http-proxy"
START_TIMEOUT = 120
MARKER = "results-that-must-stay-inside"
NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                       "source": f"print('{MARKER}')"}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
# What a researcher might write in the home to reopen the routes: never read by the server.
REOPEN = ('c = get_config()\nc.ServerApp.extra_services = []\n'
          'c.ContentsManager.files_handler_class = "jupyter_server.files.handlers.FilesHandler"\n')

# (method, path under the server's prefix): every route that hands a file to the browser
CLOSED = [
    ("GET", "files/table.csv"),
    ("GET", "files/table.csv?download=1"),
    ("HEAD", "files/table.csv"),
    ("GET", "files/results/"),
    ("GET", "files/analysis.ipynb"),
    ("GET", "view/table.csv"),
    ("GET", "view/analysis.ipynb"),
    ("GET", "nbconvert/html/analysis.ipynb"),
    ("GET", "nbconvert/html/analysis.ipynb?download=true"),
    ("GET", "nbconvert/script/analysis.ipynb?download=true"),
    ("GET", "nbconvert/notebook/analysis.ipynb"),
    ("POST", "nbconvert/html"),
]


@dataclass
class Notebook:
    proxy_url: str       # through configurable-http-proxy, as the browser sees it
    server_url: str      # the server itself (the pod's port)
    token: str           # the researcher's hub token (what the browser's session amounts to)
    log: Path

    def client(self, via: str, token: str | None = None) -> httpx.Client:
        base = (self.proxy_url if via == "proxy" else self.server_url) + PREFIX
        token = self.token if token is None else token
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=30.0, follow_redirects=False)


def _home(root: Path) -> Path:
    home = root / "home"
    (home / "results").mkdir(parents=True)
    (home / "table.csv").write_text(f"site,patients\nA,130\n# {MARKER}\n")
    (home / "results" / "t2.csv").write_text(f"{MARKER}\n")
    (home / "analysis.ipynb").write_text(json.dumps(NOTEBOOK))
    for d in (home / ".jupyter", home / ".local" / "etc" / "jupyter", home):
        d.mkdir(parents=True, exist_ok=True)
        (d / "jupyter_server_config.py").write_text(REOPEN)
    return home


def _hub_secret(root: Path, hub, port: int) -> Path:
    """The Secret the hub's spawner writes (mounted at SPE_HUB_CREDENTIALS_DIR): the server's own
    token, bound to this server, and the singleuser environment a spawner gives."""
    creds = root / "hub-secret"
    creds.mkdir()
    scopes = json.dumps([f"access:servers!server={USER}/{SERVER}", f"access:servers!user={USER}"])
    values = {
        "JUPYTERHUB_API_TOKEN": hub.server_token(USER, NAMESPACE, WORKSPACE),
        "JUPYTERHUB_API_URL": "http://spe-hub.spe-system.svc.invalid:8081/hub/api",  # not resolvable in a pod
        "JUPYTERHUB_ACTIVITY_URL": f"http://spe-hub.spe-system.svc.invalid:8081/hub/api/users/{USER}/activity",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "JUPYTERHUB_SERVICE_URL": f"http://{LOOPBACK}:{port}{PREFIX}",
        "JUPYTERHUB_USER": USER,
        "JUPYTERHUB_SERVER_NAME": SERVER,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{USER}-{SERVER}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{PREFIX}oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes,
        "JUPYTERHUB_OAUTH_SCOPES": scopes,
    }
    for k, v in values.items():
        (creds / k).write_text(v)
    return creds


def _start_server(root: Path, hub, config_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    home = _home(root)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "NO_PROXY": "*",
        # no IPython directory to migrate: jupyter would mark the (repository's) config directory
        "IPYTHONDIR": str(root / "no-ipython"),
        # what the operator injects (workspaces/statefulset.py) and the image's environment
        "SPE_HUB_CREDENTIALS_DIR": str(_hub_secret(root, hub, port)),
        "SPE_HUB_API_URL": hub.api_url,
        "SPE_WORKSPACE": WORKSPACE, "SPE_NAMESPACE": NAMESPACE,
        "JUPYTER_CONFIG_DIR": str(config_dir),
    }
    log = root / "server.log"
    with open(log, "wb") as fh:
        # --allow-root: the suite runs as root; the image runs the server as UID 1000
        proc = subprocess.Popen(["sh", str(repo_root() / IMAGE_DIR / "start-notebook.sh"),
                                 f"--ip={LOOPBACK}", f"--port={port}", "--allow-root"],
                                cwd=home, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://{LOOPBACK}:{port}{PREFIX}api", timeout=START_TIMEOUT, proc=proc, log=log,
                  ok=lambda r: r.status_code == 200)
    except BaseException:
        stop(proc)
        raise
    return proc, port, log


@pytest.fixture(scope="module")
def notebook(hub, tmp_path_factory) -> Iterator[Notebook]:
    root = tmp_path_factory.mktemp("notebook")
    server, port, log = _start_server(root / "spe", hub, repo_root() / CONFIG_DIR)
    chp = repo_root() / CHP_BIN
    proxy_port, api_port, auth = free_port(), free_port(), secrets.token_hex(16)
    with open(root / "proxy.log", "wb") as fh:
        proxy = subprocess.Popen([str(chp), "--ip", LOOPBACK, "--port", str(proxy_port), "--api-ip", LOOPBACK,
                                  "--api-port", str(api_port), "--default-target", f"http://{LOOPBACK}:9"],
                                 env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": auth}, stdout=fh,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        api = f"http://{LOOPBACK}:{api_port}/api/routes"
        wait_http(api, timeout=60, proc=proxy, log=root / "proxy.log",
                  ok=lambda r: r.status_code in (200, 403))
        # the route the hub adds for a named server
        r = httpx.post(f"{api}{PREFIX.rstrip('/')}", headers={"Authorization": f"token {auth}"},
                       json={"target": f"http://{LOOPBACK}:{port}"}, trust_env=False)
        assert r.status_code == 201, r.text
        yield Notebook(proxy_url=f"http://{LOOPBACK}:{proxy_port}", server_url=f"http://{LOOPBACK}:{port}",
                       token=hub.token_for(USER), log=log)
    finally:
        stop(proxy)
        stop(server)


def _call(http: httpx.Client, method: str, path: str) -> httpx.Response:
    if method == "POST":
        return http.post(path, json=NOTEBOOK)
    return http.request(method, path)


@pytest.mark.parametrize("via", ["proxy", "server"])
def test_the_server_is_up_and_the_researcher_is_let_in(notebook, via):
    """The control: the researcher's token is accepted (checked by the hub at SPE_HUB_API_URL)
    and the editor reads files through the contents API, so a 403 below is the closed route."""
    with notebook.client(via) as http:
        r = http.get("api/contents/table.csv", params={"content": "1"})
        assert r.status_code == 200, r.text
        assert MARKER in r.json()["content"]
        assert http.get("lab").status_code == 200
    with notebook.client(via, token="") as http:
        assert http.get("api/contents/table.csv").status_code in (302, 403)  # nobody else


@pytest.mark.parametrize("via", ["proxy", "server"])
@pytest.mark.parametrize("method, path", CLOSED)
def test_every_download_route_is_refused(notebook, via, method, path):
    with notebook.client(via) as http:
        r = _call(http, method, path)
    assert r.status_code == 403, (method, path, r.status_code, r.text[:300])
    assert MARKER not in r.text and "site,patients" not in r.text
    if method != "HEAD":
        body = r.json()
        assert body["error"] == "downloads_closed" and "spe-export request" in body["message"]
    assert "attachment" not in r.headers.get("content-disposition", "")


def test_refused_without_a_login_too_and_each_refusal_is_logged(notebook):
    with notebook.client("proxy", token="") as http:
        r = http.get("files/table.csv")
    assert r.status_code == 403 and MARKER not in r.text
    assert f"refused GET {PREFIX}files/table.csv: downloads are closed" in notebook.log.read_text()


def test_jupyterlab_offers_neither_download_nor_export(notebook):
    with notebook.client("proxy") as http:
        assert http.get("api/nbconvert").json() == {}  # no export formats
        page = http.get("lab").text
    config = json.loads(page.split('id="jupyter-config-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    disabled = config["disabledExtensions"]
    for plugin in ("@jupyterlab/docmanager-extension:download", "@jupyterlab/filebrowser-extension:download",
                   "@jupyterlab/notebook-extension:export"):
        assert plugin in disabled, disabled


def test_without_the_images_configuration_the_routes_are_open(hub, tmp_path):
    """The same server and start-up with an empty configuration directory serves the file: the
    refusals above come from the image's configuration, and this test would see them open."""
    empty = tmp_path / "no-config"
    empty.mkdir()
    server, port, _ = _start_server(tmp_path / "open", hub, empty)
    try:
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}{PREFIX}", trust_env=False, timeout=30.0,
                          headers={"Authorization": f"token {hub.token_for(USER)}"}) as http:
            r = http.get("files/table.csv?download=1")
            assert r.status_code == 200 and MARKER in r.text
            assert "attachment" in r.headers.get("content-disposition", "")
    finally:
        stop(server)


def test_the_image_ships_this_configuration_as_its_only_one():
    """The directory the tests above start the server with is the one the image installs as its
    JUPYTER_CONFIG_DIR, which start-notebook.sh keeps, with the home's configuration off."""
    dockerfile = (repo_root() / IMAGE_DIR / "Dockerfile").read_text()
    start = (repo_root() / IMAGE_DIR / "start-notebook.sh").read_text()
    installed = "/opt/spe/etc/jupyter"
    assert f"COPY {CONFIG_DIR}/ {installed}/" in dockerfile
    assert f"JUPYTER_CONFIG_DIR={installed}" in dockerfile
    assert f'JUPYTER_CONFIG_DIR="${{JUPYTER_CONFIG_DIR:-{installed}}}"' in start
    for setting in ("JUPYTERHUB_DISABLE_USER_CONFIG=1", "PYTHONNOUSERSITE=1"):
        assert setting in dockerfile and setting in start
    config = (repo_root() / CONFIG_DIR / "jupyter_server_config.py").read_text()
    assert 'c.ServerApp.extra_services = ["spe_workspace.closed_downloads"]' in config
