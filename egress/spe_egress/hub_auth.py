"""Researcher authentication: the JupyterHub API token that the researcher's server holds,
checked against the hub (``GET /hub/api/user``). Answers are cached briefly so a burst of
uploads does not become a burst of hub calls; a revoked token stops working within the TTL.
"""

from __future__ import annotations

import hashlib
import time

import httpx


class HubAuthError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class HubAuthenticator:
    def __init__(self, hub_api_url: str, *, cache_ttl_s: float = 30.0, timeout_s: float = 10.0):
        # hub_api_url: e.g. http://127.0.0.1:8081/hub/api
        self.hub_api_url = hub_api_url.rstrip("/")
        self.cache_ttl_s = cache_ttl_s
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)
        self._cache: dict[str, tuple[float, str]] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def user_for(self, token: str) -> str:
        """The hub user name for a token, or :class:`HubAuthError` (401 bad token, 502 hub down)."""
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
        name = resp.json().get("name")
        if not name:
            raise HubAuthError(401, "the token does not belong to a user")
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (now + self.cache_ttl_s, name)
        return name


def token_from_header(value: str | None) -> str:
    if not value:
        return ""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() in ("token", "bearer"):
        return rest.strip()
    return ""
