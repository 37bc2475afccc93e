"""The async client: a handful of verbs over one pooled HTTPS session."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .config import KubeConfig, load_kubeconfig
from .resources import ResourceKind, kind_for

FIELD_MANAGER = "spe-operator"


class ApiError(Exception):
    """A non-2xx answer of the API server, with its Status reason and message."""

    def __init__(self, status: int, body: Any, method: str = "", path: str = ""):
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.reason = self.body.get("reason", "")
        self.message = self.body.get("message", str(body))
        super().__init__(f"{method} {path}: HTTP {status} {self.reason}: {self.message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _kind_of(obj_or_kind: dict | ResourceKind) -> ResourceKind:
    if isinstance(obj_or_kind, ResourceKind):
        return obj_or_kind
    return kind_for(obj_or_kind["apiVersion"], obj_or_kind["kind"])


class KubeClient:
    """Async client for the Kubernetes API. Use as ``async with KubeClient() as kube:``."""

    def __init__(self, config: KubeConfig | None = None, *, field_manager: str = FIELD_MANAGER,
                 timeout: float = 30.0, pool_size: int = 32):
        self.config = config or load_kubeconfig()
        self.field_manager = field_manager
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "KubeClient":
        self._ensure_session()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context(), limit=self._pool_size)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                      content_type: str = "application/json") -> Any:
        session = self._ensure_session()
        url = self.config.server + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        headers = {"Accept": "application/json"}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        async with session.request(method, url, data=data, headers=headers) as resp:
            text = await resp.text()
            try:
                payload = json.loads(text) if text else None
            except json.JSONDecodeError:
                payload = text
            if resp.status >= 400:
                raise ApiError(resp.status, payload, method, path)
            return payload

    async def request_text(self, path: str, *, params: dict | None = None) -> str:
        """GET a plain-text resource (a pod's log) as text, never parsed as JSON."""
        session = self._ensure_session()
        url = self.config.server + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        headers = {"Accept": "text/plain, */*"}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with session.get(url, headers=headers) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    payload = json.loads(text)
                except json.JSONDecodeError:
                    payload = text
                raise ApiError(resp.status, payload, "GET", path)
            return text

    # --- verbs -------------------------------------------------------------------------------

    async def get(self, kind: ResourceKind | tuple[str, str], name: str, namespace: str | None = None) -> dict:
        rk = kind if isinstance(kind, ResourceKind) else kind_for(*kind)
        return await self.request("GET", rk.path(namespace, name))

    async def get_or_none(self, kind, name: str, namespace: str | None = None) -> dict | None:
        try:
            return await self.get(kind, name, namespace)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def list(self, kind, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> list[dict]:
        rk = kind if isinstance(kind, ResourceKind) else kind_for(*kind)
        items: list[dict] = []
        cont = None
        while True:
            page = await self.request("GET", rk.path(namespace), params={
                "labelSelector": label_selector, "fieldSelector": field_selector,
                "limit": 500, "continue": cont})
            items.extend(page.get("items", []))
            cont = page.get("metadata", {}).get("continue")
            if not cont:
                return items

    async def create(self, obj: dict) -> dict:
        rk = _kind_of(obj)
        ns = obj["metadata"].get("namespace")
        return await self.request("POST", rk.path(ns), body=obj)

    async def apply(self, obj: dict, *, force: bool = True, field_manager: str | None = None) -> dict:
        """Server-side apply: the object's fields become owned by this field manager."""
        rk = _kind_of(obj)
        md = obj["metadata"]
        return await self.request(
            "PATCH", rk.path(md.get("namespace"), md["name"]),
            params={"fieldManager": field_manager or self.field_manager, "force": "true" if force else None},
            body=obj, content_type="application/apply-patch+yaml")

    async def apply_status(self, obj: dict, *, field_manager: str | None = None) -> dict:
        rk = _kind_of(obj)
        md = obj["metadata"]
        return await self.request(
            "PATCH", rk.path(md.get("namespace"), md["name"], "status"),
            params={"fieldManager": field_manager or self.field_manager, "force": "true"},
            body=obj, content_type="application/apply-patch+yaml")

    async def merge_patch(self, kind, name: str, patch: dict, namespace: str | None = None,
                          subresource: str | None = None) -> dict:
        rk = kind if isinstance(kind, ResourceKind) else kind_for(*kind)
        return await self.request("PATCH", rk.path(namespace, name, subresource), body=patch,
                                  content_type="application/merge-patch+json")

    async def delete(self, kind, name: str, namespace: str | None = None, *,
                     propagation: str = "Background", missing_ok: bool = True) -> dict | None:
        rk = kind if isinstance(kind, ResourceKind) else kind_for(*kind)
        try:
            return await self.request("DELETE", rk.path(namespace, name),
                                      body={"kind": "DeleteOptions", "apiVersion": "v1",
                                            "propagationPolicy": propagation})
        except ApiError as e:
            if missing_ok and e.not_found:
                return None
            raise

    async def wait_for(self, predicate, *, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
        """Poll ``predicate`` (an async callable returning a truthy value) until true or the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = None
        while True:
            last = await predicate()
            if last:
                return last
            if loop.time() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(interval)
