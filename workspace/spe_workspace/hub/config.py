"""The hub's whole configuration: ``configure(c)`` from ``SPE_HUB_*`` environment variables.

``jupyterhub_config.py`` (the ``spe-hub-config`` ConfigMap of manifests/base, and the tests)
is two lines: ``from spe_workspace.hub.config import configure`` and ``configure(c)``.

Idle servers: the **operator's** idle stop, not jupyterhub-idle-culler. The hub records each
server's last activity (reported by jupyterhub-singleuser and the proxy) and the spawner's
``poll()`` copies it onto the Workspace (annotation ``spe.ehds.io/last-activity``); the operator
stops a Workspace idle for ``spec.idleTimeoutMinutes`` (and a GPU-idle one) with a reason in
its Ready condition, and the next poll shows the stop to the hub. One clock, per Workspace,
audited by the operator; a culler would be a second one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
ENV_PREFIX = "SPE_HUB_"


@dataclass(frozen=True)
class HubSettings:
    """Each field is read from ``SPE_HUB_<FIELD>``."""

    # Keycloak: the issuer the browser is sent to, and the one the hub itself calls (in a
    # cluster they may differ: public ingress vs. in-cluster Service); client of realm spe.
    oidc_issuer: str = ""
    oidc_internal_issuer: str = ""
    oidc_client_id: str = "spe-hub"
    oidc_client_secret_file: str = "/etc/spe-hub/oidc/client-secret"
    # Where researchers reach the proxy (the OAuth callback is <public_url>/hub/oauth_callback).
    public_url: str = "http://127.0.0.1:8000"
    # The proxy's public side (hub and proxy run as two pods in a cluster).
    bind_url: str = "http://0.0.0.0:8000"
    hub_bind_url: str = "http://0.0.0.0:8081"
    # How workspace pods and the proxy reach the hub API (workspaces resolve it by hostAliases).
    hub_connect_url: str = "http://spe-hub.spe-system.svc:8081"
    proxy_api_url: str = "http://spe-proxy-api.spe-system.svc:8001"
    proxy_should_start: bool = False
    proxy_command: str = "configurable-http-proxy"
    data_dir: str = "/srv/jupyterhub"
    kubeconfig: str | None = None
    notebook_port: int = 8888
    start_timeout: int = 300
    auth_refresh_age: int = 60
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "HubSettings":
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name == "extra":
                continue
            if f.type in ("bool", bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes")
            elif f.type in ("int", int):
                values[f.name] = int(raw)
            else:
                values[f.name] = raw
        return cls(**values)

    def client_secret(self) -> str:
        return Path(self.oidc_client_secret_file).read_text().strip()


def configure(c, settings: HubSettings | None = None) -> HubSettings:
    """Fill JupyterHub's config object ``c``."""
    from .auth import NOT_A_MEMBER_AT_LOGIN, SpeAuthenticator, token_groups  # noqa: PLC0415 - hub process only
    from .pages import WorkspacesHandler  # noqa: PLC0415
    from .spawner import WorkspaceSpawner  # noqa: PLC0415

    s = settings or HubSettings.from_env()
    data = Path(s.data_dir)
    issuer = s.oidc_issuer.rstrip("/")
    internal = (s.oidc_internal_issuer or s.oidc_issuer).rstrip("/")

    c.JupyterHub.bind_url = s.bind_url
    c.JupyterHub.hub_bind_url = s.hub_bind_url
    c.JupyterHub.hub_connect_url = s.hub_connect_url
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    # Workspaces outlive a hub restart: the operator owns them; the spawner's poll finds them.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = s.proxy_should_start
    c.ConfigurableHTTPProxy.api_url = s.proxy_api_url
    c.ConfigurableHTTPProxy.should_start = s.proxy_should_start
    c.ConfigurableHTTPProxy.command = [s.proxy_command]
    # The proxy's token: CONFIGPROXY_AUTH_TOKEN in both pods' environment (one Secret).

    c.JupyterHub.authenticator_class = SpeAuthenticator
    c.SpeAuthenticator.kubeconfig = s.kubeconfig
    c.SpeAuthenticator.login_service = "SPE login (Keycloak)"
    c.SpeAuthenticator.client_id = s.oidc_client_id
    c.SpeAuthenticator.client_secret = s.client_secret()
    c.SpeAuthenticator.oauth_callback_url = s.public_url.rstrip("/") + "/hub/oauth_callback"
    c.SpeAuthenticator.authorize_url = f"{issuer}/protocol/openid-connect/auth"
    c.SpeAuthenticator.token_url = f"{internal}/protocol/openid-connect/token"
    c.SpeAuthenticator.userdata_url = f"{internal}/protocol/openid-connect/userinfo"
    c.SpeAuthenticator.logout_redirect_url = f"{issuer}/protocol/openid-connect/logout"
    c.SpeAuthenticator.scope = ["openid", "profile", "email"]
    c.SpeAuthenticator.username_claim = "preferred_username"
    c.SpeAuthenticator.manage_groups = True
    c.SpeAuthenticator.auth_state_groups_key = token_groups
    c.SpeAuthenticator.enable_auth_state = True
    c.SpeAuthenticator.refresh_pre_spawn = True
    c.SpeAuthenticator.auth_refresh_age = s.auth_refresh_age
    c.SpeAuthenticator.custom_403_message = NOT_A_MEMBER_AT_LOGIN
    # No allow list: SpeAuthenticator.check_allowed asks the API (active permits naming the person).

    c.JupyterHub.spawner_class = WorkspaceSpawner
    c.WorkspaceSpawner.kubeconfig = s.kubeconfig
    c.WorkspaceSpawner.port = s.notebook_port
    c.WorkspaceSpawner.start_timeout = s.start_timeout
    c.WorkspaceSpawner.http_timeout = 120
    c.WorkspaceSpawner.poll_interval = 10
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = 0
    c.JupyterHub.default_url = "/hub/workspaces"
    c.JupyterHub.extra_handlers = [(r"/workspaces", WorkspacesHandler, {"kubeconfig": s.kubeconfig})]
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    return s
