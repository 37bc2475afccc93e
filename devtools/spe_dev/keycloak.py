"""A real Keycloak (server distribution from Maven Central, ``scripts/deps.d/keycloak.sh``) on
loopback, for the test suite and ``spe-dev demo``.

``start`` runs ``kc.sh start-dev`` from ``.cache/keycloak/keycloak-<ver>`` on the machine's newest
JDK with an in-memory database, then creates the realm of ``manifests/keycloak/spe-realm.json``
through the admin API with its ``${...}`` placeholders filled in (client secrets, the users'
password, redirect URIs). Cold start is 30-90 s on two busy cores.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from .servers import LOOPBACK, free_port, repo_root, stop, wait_http

START_TIMEOUT = 240
REALM_FILE = "manifests/keycloak/spe-realm.json"
JDK_CANDIDATES = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-21-jdk-amd64",
                  "/usr/lib/jvm/java-21-openjdk-amd64")


class KeycloakMissing(RuntimeError):
    """Keycloak or a JDK for it is not installed; the message says how to get it."""


@dataclass
class Keycloak:
    url: str
    realm: str
    client_id: str
    client_secret: str
    user_password: str
    admin_user: str
    admin_password: str
    hub_client_secret: str = ""
    operator_client_secret: str = ""
    process: subprocess.Popen | None = None

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"

    def _admin(self) -> httpx.Client:
        r = httpx.post(f"{self.url}/realms/master/protocol/openid-connect/token", trust_env=False, timeout=30,
                       data={"grant_type": "password", "client_id": "admin-cli",
                             "username": self.admin_user, "password": self.admin_password})
        r.raise_for_status()
        return httpx.Client(base_url=f"{self.url}/admin/realms", trust_env=False, timeout=120,
                            headers={"Authorization": f"Bearer {r.json()['access_token']}"})

    def allow_redirect(self, uri: str, client_id: str | None = None) -> None:
        """Add a redirect URI to a client, the gateway's by default (each test server has its own port)."""
        with self._admin() as http:
            cid = http.get(f"/{self.realm}/clients", params={"clientId": client_id or self.client_id}).json()[0]["id"]
            client = http.get(f"/{self.realm}/clients/{cid}").json()
            if uri not in client["redirectUris"]:
                client["redirectUris"] = [*client["redirectUris"], uri]
                http.put(f"/{self.realm}/clients/{cid}", json=client).raise_for_status()


def find_jdk() -> str:
    for home in JDK_CANDIDATES:
        if Path(home, "bin", "java").exists():
            return home
    return os.environ.get("JAVA_HOME", "")


def find_keycloak_home(root: Path) -> Path | None:
    homes = sorted((root / ".cache" / "keycloak").glob("keycloak-*/bin/kc.sh"))
    return homes[-1].parent.parent if homes else None


def realm_document(path: Path, values: dict[str, str]) -> dict:
    text = path.read_text()

    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise KeyError(f"{path}: no value for placeholder ${{{name}}}")
        return json.dumps(values[name])[1:-1]
    return json.loads(re.sub(r"\$\{([A-Z0-9_]+)\}", fill, text))


def start(work: Path, *, hub_redirect: str = f"http://{LOOPBACK}:8000/hub/oauth_callback",
          gateway_redirect: str = f"http://{LOOPBACK}:8090/review/callback") -> Keycloak:
    """Start Keycloak with its state and log under ``work`` and create the SPE realm; the
    caller stops ``.process`` (``servers.stop``). Raises ``KeycloakMissing`` when not installed."""
    root = repo_root()
    home = find_keycloak_home(root)
    if home is None:
        raise KeycloakMissing("Keycloak is not in .cache/keycloak: run scripts/deps.d/keycloak.sh")
    jdk = find_jdk()
    if not jdk:
        raise KeycloakMissing("no JDK 21+ found for Keycloak (set JAVA_HOME)")
    work.mkdir(parents=True, exist_ok=True)
    port, mgmt = free_port(), free_port()
    admin_pw = secrets.token_urlsafe(16)
    env = {"PATH": f"{jdk}/bin:/usr/bin:/bin", "JAVA_HOME": jdk, "HOME": str(work),
           "KC_BOOTSTRAP_ADMIN_USERNAME": "admin", "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_pw,
           "JAVA_OPTS_APPEND": "-Xms64m -Xmx768m -XX:TieredStopAtLevel=1"}
    log = work / "keycloak.log"
    cmd = [str(home / "bin" / "kc.sh"), "start-dev", f"--http-host={LOOPBACK}", f"--http-port={port}",
           f"--http-management-port={mgmt}", "--db=dev-mem", "--health-enabled=true",
           f"--hostname=http://{LOOPBACK}:{port}", "--cache=local"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    kc = Keycloak(url=f"http://{LOOPBACK}:{port}", realm="spe", client_id="spe-egress",
                  client_secret=secrets.token_urlsafe(24), user_password=secrets.token_urlsafe(12),
                  admin_user="admin", admin_password=admin_pw,
                  hub_client_secret=secrets.token_urlsafe(24), operator_client_secret=secrets.token_urlsafe(24),
                  process=proc)
    try:
        wait_http(f"http://{LOOPBACK}:{mgmt}/health/ready", timeout=START_TIMEOUT, proc=proc, log=log,
                  ok=lambda r: r.status_code == 200)
        doc = realm_document(root / REALM_FILE, {
            "SPE_EGRESS_CLIENT_SECRET": kc.client_secret, "SPE_TEST_USER_PASSWORD": kc.user_password,
            "SPE_EGRESS_REDIRECT_URI": gateway_redirect, "SPE_HUB_REDIRECT_URI": hub_redirect,
            "SPE_HUB_CLIENT_SECRET": kc.hub_client_secret, "SPE_OPERATOR_CLIENT_SECRET": kc.operator_client_secret})
        with kc._admin() as http:
            r = http.post("", json=doc, timeout=180)  # the import alone takes over 30 s on a loaded machine
            if r.status_code != 201:
                raise RuntimeError(f"realm import failed: {r.status_code} {r.text}")
    except BaseException:
        stop(proc, timeout=30)
        raise
    return kc
