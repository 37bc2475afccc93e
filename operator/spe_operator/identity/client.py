"""A thin wrapper of python-keycloak's async admin API: what the permit groups need, no more.

The operator authenticates as the service account of its confidential client (client
credentials; realm-management roles query-users, view-users, manage-users, query-groups).
Every failure comes out as one of two exceptions: ``IdentityUnavailable`` (Keycloak could not be
reached or did not answer in time) or ``IdentityRefused`` (it answered with an error).
"""

from __future__ import annotations

import asyncio
from typing import Any

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from .plan import Person

PAGE = 100
# Marks a group as the operator's (attributes are lists of strings in Keycloak).
MANAGED_ATTRIBUTE = "spe.ehds.io/managed-by"
PERMIT_ATTRIBUTE = "spe.ehds.io/permit"


class IdentityUnavailable(Exception):
    """Keycloak could not be reached (connection refused, timeout, DNS)."""


class IdentityRefused(Exception):
    """Keycloak answered with an error (authentication, permission, a bad request)."""


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause):
        text = f"{text}: {cause}"
    return text[:300]


class IdentityProvider:
    """One realm of one Keycloak, as the operator's service account sees it."""

    def __init__(self, url: str, realm: str, client_id: str, client_secret: str, *, hub_client_id: str,
                 timeout: float = 10.0, verify: bool = True):
        self.url = url.rstrip("/")
        self.realm = realm
        self.client_id = client_id
        self.hub_client_id = hub_client_id
        self.timeout = timeout
        self._connection = KeycloakOpenIDConnection(
            server_url=self.url + "/", realm_name=realm, client_id=client_id, client_secret_key=client_secret,
            grant_type="client_credentials", verify=verify, timeout=int(max(1, timeout)))
        self._admin = KeycloakAdmin(connection=self._connection)

    async def _call(self, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, timeout=self.timeout * 2)
        except (KeycloakConnectionError, TimeoutError, OSError) as exc:
            raise IdentityUnavailable(_describe(exc)) from exc
        except KeycloakError as exc:
            code = getattr(exc, "response_code", None)
            body = getattr(exc, "response_body", b"") or b""
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            raise IdentityRefused(f"HTTP {code}: {str(body)[:200]}" if code else _describe(exc)) from exc

    # --- users ----------------------------------------------------------------------------

    async def find_user(self, subject: str) -> Person | None:
        """The user whose user name -- or, for a subject with "@", e-mail -- is exactly ``subject``.

        Exact match only: Keycloak's plain ``username`` search is a substring search ("ann"
        finds "joanna"), which would put the wrong person in a permit's group."""
        found = await self._call(self._admin.a_get_users({"username": subject, "exact": True}))
        if not found and "@" in subject:
            found = await self._call(self._admin.a_get_users({"email": subject, "exact": True}))
        wanted = subject.lower()  # Keycloak keeps user names and e-mails lower case
        for user in found:
            if wanted in (str(user.get("username", "")).lower(), str(user.get("email", "")).lower()):
                return Person(username=user["username"], id=user["id"])
        return None

    # --- groups ---------------------------------------------------------------------------

    async def find_group(self, name: str) -> str | None:
        """The id of top-level group ``name``, or None."""
        try:
            group = await self._call(self._admin.a_get_group_by_path(f"/{name}"))
        except IdentityRefused as exc:
            if str(exc).startswith("HTTP 404"):
                return None
            raise
        return group.get("id")

    async def ensure_group(self, name: str, permit: str) -> str:
        """The id of top-level group ``name``, created (marked as the operator's) if absent."""
        group_id = await self.find_group(name)
        if group_id is not None:
            return group_id
        await self._call(self._admin.a_create_group(
            {"name": name, "attributes": {MANAGED_ATTRIBUTE: ["spe-operator"], PERMIT_ATTRIBUTE: [permit]}},
            skip_exists=True))
        group_id = await self.find_group(name)
        if group_id is None:
            raise IdentityRefused(f"group {name} was created but cannot be found")
        return group_id

    async def members(self, group_id: str) -> list[Person]:
        out: list[Person] = []
        first = 0
        while True:
            page = await self._call(self._admin.a_get_group_members(
                group_id, {"first": first, "max": PAGE, "briefRepresentation": True}))
            out.extend(Person(username=u["username"], id=u["id"]) for u in page)
            if len(page) < PAGE:
                return out
            first += PAGE

    async def add_member(self, group_id: str, person: Person) -> None:
        await self._call(self._admin.a_group_user_add(person.id, group_id))

    async def remove_member(self, group_id: str, person: Person) -> None:
        await self._call(self._admin.a_group_user_remove(person.id, group_id))

    async def delete_group(self, group_id: str) -> None:
        try:
            await self._call(self._admin.a_delete_group(group_id))
        except IdentityRefused as exc:
            if not str(exc).startswith("HTTP 404"):
                raise

    # --- sessions -------------------------------------------------------------------------

    async def end_hub_sessions(self, person: Person) -> int:
        """End the user's sessions that include the hub's client; return how many."""
        sessions = await self._call(self._admin.a_get_sessions(person.id))
        ended = 0
        for session in sessions:
            if self.hub_client_id not in (session.get("clients") or {}).values():
                continue
            response = await self._call(self._connection.a_raw_delete(
                f"admin/realms/{self.realm}/sessions/{session['id']}"))
            if response.status_code not in (204, 404):
                raise IdentityRefused(f"HTTP {response.status_code}: {response.text[:200]}")
            ended += response.status_code == 204
        return ended

    async def close(self) -> None:
        for conn in (self._connection, getattr(self._connection, "_keycloak_openid", None)):
            closer = getattr(getattr(conn, "connection", conn), "aclose", None) if conn is not None else None
            if closer is not None:
                try:
                    await closer()
                except Exception:  # noqa: BLE001 - closing only
                    pass
