"""Login through Keycloak (realm ``spe``, client ``spe-hub``) with oauthenticator's GenericOAuthenticator.

- Groups come from the token's ``groups`` claim (the permit groups ``permit-<name>`` the operator
  keeps in Keycloak); a leading "/" (Keycloak's full group path) is dropped; the hub manages its
  groups from them (``manage_groups``). Realm roles arrive in ``realm_roles`` (kept in auth state).
- Who may log in is decided by the API, not by the token: a person whom no Active DataPermit
  names gets a 403 page that says so (``custom_403_message``). The same check runs on every
  refresh (``auth_refresh_age``) and before every spawn (``refresh_pre_spawn``): once a permit
  ends, the next refresh signs the person out, and a Keycloak session ended by the operator
  fails the token refresh.
- ``enable_auth_state``: the tokens are kept (encrypted with ``JUPYTERHUB_CRYPT_KEY``) for
  that refresh.
"""

from __future__ import annotations

from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Unicode

from . import catalogue
from .kube import hub_kube

NOT_A_MEMBER_AT_LOGIN = ("You signed in, but no active data permit names you, so there is no workspace for you here. "
                         "Ask the data access body, or the owner of the permit you work under, to add you as a member; "
                         "then sign in again.")


def token_groups(auth_state: dict[str, Any]) -> list[str]:
    """The ``groups`` claim of the login's user info, without Keycloak's leading "/"."""
    groups = ((auth_state or {}).get("oauth_user") or {}).get("groups") or []
    return sorted({g.lstrip("/") for g in groups if isinstance(g, str) and g.strip("/")})


class SpeAuthenticator(GenericOAuthenticator):
    kubeconfig = Unicode(None, allow_none=True, config=True,
                         help="Kubeconfig of the hub's identity; None: in-cluster service account or $KUBECONFIG.")

    async def _is_member(self, username: str, auth_state: dict[str, Any] | None) -> bool:
        who = catalogue.identities(username, auth_state)
        return bool(await catalogue.active_permits(hub_kube(self.kubeconfig), who))

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        if auth_model is None:
            return True
        allowed = await self._is_member(username, auth_model.get("auth_state"))
        if not allowed:
            self.log.info("Login of %s refused: no active permit names them", username)
        return allowed

    async def refresh_user(self, user, handler=None, **kwargs):
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if refreshed is False:
            return False
        auth_state = refreshed.get("auth_state") if isinstance(refreshed, dict) else await user.get_auth_state()
        if not await self._is_member(user.name, auth_state):
            self.log.info("%s signed out: no active permit names them any more", user.name)
            return False
        return refreshed
