"""Researcher authentication: the API token of the researcher's notebook server, checked against
the hub (``GET /hub/api/user``), and the **workspace it is bound to**.

A workspace's server gets from the hub a token whose scopes name that one server
(``access:servers!server=<user>/<server name>``, the hub's ``server`` role); the server name is
``<namespace>.<workspace>`` (:mod:`spe_api.hubserver`). The gateway takes the namespace and the
workspace of every researcher request from that scope, never from the request: a member of two
permits cannot file permit A's results under permit B's policy. A token that may reach more
than one server (a user's own token, ``inherit``, ``access:servers!user=…``), none, or a server
that is not a workspace's, is refused.

Answers are cached briefly so a burst of uploads does not become a burst of hub calls; a
revoked token stops working within the TTL.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import httpx

from spe_api.hubserver import parse_hub_server_name

ACCESS_SERVERS = "access:servers"
SERVER_FILTER = "!server="
NOT_A_SERVER_TOKEN = "not_workspace_token"


class HubAuthError(Exception):
    def __init__(self, status: int, message: str, code: str = ""):
        self.status, self.message = status, message
        self.code = code or ("unauthenticated" if status == 401 else
                             "hub_unavailable" if status == 502 else NOT_A_SERVER_TOKEN)
        super().__init__(message)


@dataclass(frozen=True)
class HubIdentity:
    """Who calls, from which workspace: the user and the one server the token is bound to."""

    user: str
    server: str          # the hub's server name, <namespace>.<workspace>
    namespace: str
    workspace: str

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.workspace}"


def bound_server(user: str, scopes: list[str]) -> str:
    """The one server ``scopes`` (a token's, as the hub expands them) give access to, or
    :class:`HubAuthError` 403 when they give none or more than one."""
    servers: set[str] = set()
    broader: list[str] = []
    for scope in scopes:
        if scope != ACCESS_SERVERS and not scope.startswith(ACCESS_SERVERS + "!"):
            continue
        owner, _, server = scope[len(ACCESS_SERVERS + SERVER_FILTER):].partition("/") \
            if scope.startswith(ACCESS_SERVERS + SERVER_FILTER) else ("", "", "")
        if owner == user and server:
            servers.add(server)
        else:
            broader.append(scope)
    if broader:
        raise HubAuthError(403, f"this token may reach more than one notebook server ({', '.join(sorted(broader))}); "
                           "exports are made with the token of the workspace's own server "
                           "(JUPYTERHUB_API_TOKEN inside the workspace's notebook)")
    if len(servers) != 1:
        what = "no server" if not servers else f"{len(servers)} servers ({', '.join(sorted(servers))})"
        raise HubAuthError(403, f"this token is bound to {what}, not to one workspace's server; run spe-export "
                           "inside the workspace's notebook, whose JUPYTERHUB_API_TOKEN names its workspace")
    return servers.pop()


def identity_from_model(model: dict) -> HubIdentity:
    """The identity in the hub's answer to ``GET /hub/api/user`` (its ``name`` and ``scopes``)."""
    user = model.get("name")
    if not user or model.get("kind", "user") != "user":
        raise HubAuthError(401, "the token does not belong to a user")
    server = bound_server(user, list(model.get("scopes") or []))
    parsed = parse_hub_server_name(server)
    if parsed is None:
        raise HubAuthError(403, f"this token is bound to server {server!r}, which is not a workspace's server "
                           "(<namespace>.<workspace>); start the workspace from the hub")
    return HubIdentity(user=user, server=server, namespace=parsed[0], workspace=parsed[1])


class HubAuthenticator:
    def __init__(self, hub_api_url: str, *, cache_ttl_s: float = 30.0, timeout_s: float = 10.0):
        # hub_api_url: e.g. http://127.0.0.1:8081/hub/api
        self.hub_api_url = hub_api_url.rstrip("/")
        self.cache_ttl_s = cache_ttl_s
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)
        self._cache: dict[str, tuple[float, HubIdentity]] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def identify(self, token: str) -> HubIdentity:
        """The user and workspace of a server's token, or :class:`HubAuthError` (401 bad token,
        403 not one workspace server's token, 502 hub down)."""
        if not token:
            raise HubAuthError(401, "no JupyterHub API token (send 'Authorization: token …')")
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        try:
            resp = await self._client.get(f"{self.hub_api_url}/user",
                                          headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as e:
            raise HubAuthError(502, f"could not reach JupyterHub to check the token: {e}") from None
        if resp.status_code in (401, 403):
            raise HubAuthError(401, "JupyterHub does not accept this API token")
        if resp.status_code != 200:
            raise HubAuthError(502, f"JupyterHub answered {resp.status_code} when checking the token")
        ident = identity_from_model(resp.json())
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (now + self.cache_ttl_s, ident)
        return ident


def token_from_header(value: str | None) -> str:
    if not value:
        return ""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() in ("token", "bearer"):
        return rest.strip()
    return ""
