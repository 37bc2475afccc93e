"""What the identity tests ask Keycloak directly (as its admin), a browser-less login of a user
through the hub's client (authorization code with PKCE, as the hub does it), and a TCP relay
in front of Keycloak that a test can cut and restore (Keycloak unreachable, then back)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import socket
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx

from spe_dev.servers import LOOPBACK, free_port

HUB_CLIENT = "spe-hub"
HUB_REDIRECT = f"http://{LOOPBACK}:8000/hub/oauth_callback"  # what the realm registers for the hub


# --- the admin's view --------------------------------------------------------------------------

def group_members(kc, group: str) -> set[str] | None:
    """User names in top-level group ``group``; None when the group does not exist."""
    with kc._admin() as http:
        r = http.get(f"/{kc.realm}/group-by-path/{group}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        members = http.get(f"/{kc.realm}/groups/{r.json()['id']}/members").json()
        return {u["username"] for u in members}


def delete_group(kc, group: str) -> None:
    with kc._admin() as http:
        r = http.get(f"/{kc.realm}/group-by-path/{group}")
        if r.status_code == 200:
            http.delete(f"/{kc.realm}/groups/{r.json()['id']}")


def add_to_group(kc, username: str, group: str) -> None:
    with kc._admin() as http:
        gid = http.get(f"/{kc.realm}/group-by-path/{group}").json()["id"]
        http.put(f"/{kc.realm}/users/{user_id(kc, username)}/groups/{gid}").raise_for_status()


def user_id(kc, username: str) -> str:
    with kc._admin() as http:
        (user,) = http.get(f"/{kc.realm}/users", params={"username": username, "exact": "true"}).json()
        return user["id"]


def hub_sessions(kc, username: str) -> list[dict]:
    """The user's sessions that include the hub's client."""
    with kc._admin() as http:
        sessions = http.get(f"/{kc.realm}/users/{user_id(kc, username)}/sessions").json()
    return [s for s in sessions if HUB_CLIENT in (s.get("clients") or {}).values()]


# --- a user's login through the hub's client ------------------------------------------------------

@dataclass
class Login:
    id_token: dict
    refresh_token: str

    @property
    def groups(self) -> list[str]:
        return self.id_token.get("groups", [])


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def hub_login(kc, username: str) -> Login:
    """Log ``username`` in at Keycloak through the hub's client, as a browser would (login form,
    authorization code with PKCE), and exchange the code as the hub would."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    oidc = f"{kc.issuer}/protocol/openid-connect"
    with httpx.Client(trust_env=False, timeout=30, follow_redirects=False) as browser:
        page = browser.get(f"{oidc}/auth", params={
            "client_id": HUB_CLIENT, "response_type": "code", "scope": "openid", "redirect_uri": HUB_REDIRECT,
            "state": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256"})
        assert page.status_code == 200, page.text[:500]
        action = html.unescape(re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text).group(1))
        # Keycloak marks its login cookies Secure (SameSite=None); a browser sends them to a
        # loopback http origin (a secure context), Python's cookie jar does not: send them as-is.
        cookies = "; ".join(c.split(";", 1)[0].strip() for c in page.headers.get_list("set-cookie"))
        browser.cookies.clear()
        done = browser.post(action, data={"username": username, "password": kc.user_password, "credentialId": ""},
                            headers={"Cookie": cookies})
        assert done.status_code == 302, f"login of {username} failed: {done.status_code} {done.text[:300]}"
        code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
        tokens = browser.post(f"{oidc}/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": HUB_REDIRECT, "code_verifier": verifier,
            "client_id": HUB_CLIENT, "client_secret": kc.hub_client_secret})
        tokens.raise_for_status()
        body = tokens.json()
    return Login(_claims(body["id_token"]), body["refresh_token"])


def refresh(kc, login: Login) -> httpx.Response:
    """The hub's refresh of the user's tokens (fails once the session is ended)."""
    return httpx.post(f"{kc.issuer}/protocol/openid-connect/token", trust_env=False, timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": login.refresh_token,
        "client_id": HUB_CLIENT, "client_secret": kc.hub_client_secret})


# --- Keycloak behind a relay the test can cut ----------------------------------------------------

class Relay:
    """A TCP relay on a loopback port of its own to ``target``: ``cut()`` closes the port and
    every connection through it (connections are refused, as from a Keycloak that is down);
    ``restore()`` opens the same port again."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="kc-relay").start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); a bare close() would leave the
            # kernel's socket listening (and accepting) until that accept() returns
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile: nothing gets through
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.difference_update((src, dst))
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
