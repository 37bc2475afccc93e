"""OpenID Connect authorisation-code flow (with PKCE and nonce) for the reviewer page.

Discovery, the code exchange and the JWKS all come from the issuer (Keycloak's realm); the
ID token's signature, issuer, audience, expiry and nonce are verified with PyJWT. Realm roles
are read from the ID token claim named by ``roles_claim`` (the realm's client maps them there).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import jwt


class OIDCError(Exception):
    pass


@dataclass(frozen=True)
class Identity:
    subject: str
    username: str
    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class AuthStart:
    url: str
    state: str
    nonce: str
    verifier: str


class OIDCClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str, *, roles_claim: str = "realm_roles",
                 timeout_s: float = 10.0, discovery_ttl_s: float = 300.0, internal_issuer: str = ""):
        self.issuer = issuer.rstrip("/")
        # Where the gateway itself reaches the issuer (an in-cluster Service) when browsers reach
        # it elsewhere (a public ingress): discovery, the code exchange and the keys go there; the
        # browser is still sent to the public authorization endpoint, and tokens must name the
        # public issuer.
        self.internal_issuer = (internal_issuer or issuer).rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.roles_claim = roles_claim
        self._http = httpx.AsyncClient(timeout=timeout_s, trust_env=False)
        self._meta: dict | None = None
        self._meta_at = 0.0
        self._ttl = discovery_ttl_s
        self._jwks: dict[str, jwt.PyJWK] = {}

    async def close(self) -> None:
        await self._http.aclose()

    async def metadata(self) -> dict:
        if self._meta is None or time.monotonic() - self._meta_at > self._ttl:
            r = await self._http.get(f"{self.internal_issuer}/.well-known/openid-configuration")
            if r.status_code != 200:
                raise OIDCError(f"OIDC discovery failed: HTTP {r.status_code}")
            meta = r.json()
            if meta.get("issuer", "").rstrip("/") != self.issuer:
                raise OIDCError(f"the discovery document names another issuer ({meta.get('issuer')!r}, "
                                f"expected {self.issuer!r})")
            self._meta, self._meta_at = self._internal_endpoints(meta), time.monotonic()
        return self._meta

    def _internal_endpoints(self, meta: dict) -> dict:
        """The endpoints the gateway calls itself, moved from the public issuer to the internal one."""
        if self.internal_issuer == self.issuer:
            return meta
        moved = dict(meta)
        for key in ("token_endpoint", "jwks_uri"):
            url = str(meta.get(key, ""))
            if url.startswith(self.issuer + "/"):
                moved[key] = self.internal_issuer + url[len(self.issuer):]
        return moved

    async def start(self, redirect_uri: str) -> AuthStart:
        meta = await self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # RFC 7636: 43-128 characters
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        url = meta["authorization_endpoint"] + "?" + urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
            "scope": "openid profile email", "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        return AuthStart(url, state, nonce, verifier)

    async def finish(self, code: str, redirect_uri: str, nonce: str, verifier: str) -> Identity:
        meta = await self.metadata()
        r = await self._http.post(meta["token_endpoint"], data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}, auth=(self.client_id, self.client_secret))
        if r.status_code != 200:
            try:
                why = r.json().get("error_description") or r.json().get("error") or ""
            except ValueError:
                why = ""
            raise OIDCError(f"the code exchange failed: HTTP {r.status_code} {why}".strip())
        id_token = r.json().get("id_token")
        if not id_token:
            raise OIDCError("the issuer sent no ID token")
        claims = await self._verify(id_token, meta)
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OIDCError("the ID token's nonce does not match this login")
        roles = claims.get(self.roles_claim) or []
        if isinstance(roles, str):
            roles = [roles]
        username = str(claims.get("preferred_username") or "").strip()
        if not username:
            # the SPE names people by their user name (permits, hub, reviewer lists; see
            # identity.py); the opaque ``sub`` is another name for the same person
            raise OIDCError("the ID token carries no preferred_username; the realm's client must map it")
        return Identity(subject=claims["sub"], username=username,
                        name=claims.get("name") or claims.get("preferred_username") or claims["sub"],
                        roles=frozenset(roles))

    async def _key(self, kid: str, meta: dict) -> jwt.PyJWK:
        if kid not in self._jwks:
            r = await self._http.get(meta["jwks_uri"])
            if r.status_code != 200:
                raise OIDCError(f"could not fetch the issuer's keys: HTTP {r.status_code}")
            keys = {}
            for k in r.json().get("keys", []):
                if k.get("use", "sig") == "sig" and k.get("kid"):
                    try:
                        keys[k["kid"]] = jwt.PyJWK(k)
                    except jwt.PyJWTError:
                        continue
            self._jwks = keys
        if kid not in self._jwks:
            raise OIDCError("the ID token is signed with an unknown key")
        return self._jwks[kid]

    async def _verify(self, token: str, meta: dict) -> dict:
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key(header.get("kid", ""), meta)
            return jwt.decode(token, key=key, algorithms=["RS256", "ES256", "PS256"], audience=self.client_id,
                              issuer=self.issuer, options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                              leeway=30)
        except jwt.PyJWTError as e:
            raise OIDCError(f"the ID token is not valid: {e}") from None
