"""The reviewer login when the gateway reaches the identity provider at another address than
browsers do (in a cluster: an in-cluster Service against a public ingress)."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from spe_egress.oidc import OIDCClient, OIDCError

pytestmark = pytest.mark.egress

PUBLIC = "http://127.0.0.1:8180/realms/spe"
INTERNAL = "http://198.18.0.9:8180/realms/spe"


def fake_issuer(key, *, named: str = PUBLIC, seen: list[str]):
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1", "use": "sig"}

    def handle(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen.append(url)
        if not url.startswith(INTERNAL):
            return httpx.Response(502, text="only the internal address is reachable from the gateway")
        if url.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={
                "issuer": named, "authorization_endpoint": f"{PUBLIC}/protocol/openid-connect/auth",
                "token_endpoint": f"{PUBLIC}/protocol/openid-connect/token",
                "jwks_uri": f"{PUBLIC}/protocol/openid-connect/certs"})
        if url.endswith("/certs"):
            return httpx.Response(200, json={"keys": [jwk]})
        if url.endswith("/token"):
            now = int(time.time())
            token = jwt.encode({"iss": PUBLIC, "aud": "spe-egress", "sub": "s-1", "exp": now + 60, "iat": now,
                                "nonce": "n-1", "preferred_username": "rev-ada", "realm_roles": ["output-reviewer"]},
                               key, algorithm="RS256", headers={"kid": "k1"})
            return httpx.Response(200, json={"id_token": token})
        return httpx.Response(404)
    return httpx.MockTransport(handle)


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def client(key, seen, **kw) -> OIDCClient:
    c = OIDCClient(PUBLIC, "spe-egress", "secret", internal_issuer=INTERNAL)
    c._http = httpx.AsyncClient(transport=fake_issuer(key, seen=seen, **kw))
    return c


def test_browser_goes_to_the_public_address_and_the_gateway_calls_the_internal_one(key):
    seen: list[str] = []
    c = client(key, seen)

    async def login():
        start = await c.start("http://127.0.0.1:8090/review/callback")
        ident = await c.finish("code-1", "http://127.0.0.1:8090/review/callback", "n-1", start.verifier)
        await c.close()
        return start, ident

    start, ident = asyncio.run(login())
    assert start.url.startswith(f"{PUBLIC}/protocol/openid-connect/auth?")
    assert ident.username == "rev-ada" and "output-reviewer" in ident.roles
    assert seen and all(u.startswith(INTERNAL) for u in seen), seen


def test_an_internal_address_serving_another_issuer_is_refused(key):
    c = client(key, [], named="http://127.0.0.1:9999/realms/other")
    with pytest.raises(OIDCError, match="names another issuer.*realms/other"):
        asyncio.run(c.start("http://127.0.0.1:8090/review/callback"))
