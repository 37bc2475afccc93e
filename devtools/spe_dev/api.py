"""A tiny synchronous JSON client for the local API server (stdlib only).

spe-dev needs a handful of calls (readiness, nodes, service accounts) and runs before any
event loop exists, so it does not use the async spe_kube client.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    def __init__(self, status: int, body: str, method: str, url: str):
        self.status = status
        self.body = body
        super().__init__(f"{method} {url}: HTTP {status}: {body[:500]}")


@dataclass
class Api:
    server: str
    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    timeout: float = 10.0

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def raw(self, method: str, path: str, body: Any = None,
            content_type: str = "application/json") -> tuple[int, str]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=self.timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def call(self, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> Any:
        status, text = self.raw(method, path, body, content_type)
        if status >= 300:
            raise HttpError(status, text, method, self.server + path)
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def get_or_none(self, path: str) -> Any:
        """``get``, with None for an object that does not exist (404)."""
        try:
            return self.get(path)
        except HttpError as err:
            if err.status == 404:
                return None
            raise

    def create(self, path: str, obj: dict) -> Any:
        return self.call("POST", path, obj)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)
