"""Fixtures of the egress-gateway tests: a gateway served on loopback (in a thread, with its
own event loop) over an in-memory or a Kubernetes store, and the shared server fixtures."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from spe_egress.app import create_app
from spe_egress.checks_adapter import Thresholds
from spe_egress.keys import GatewayKeys
from spe_egress.settings import Settings
from spe_egress.store import ExportPolicy, MemoryStore, PermitInfo, WorkspaceInfo

from spe_dev.servers import LOOPBACK, free_port

SHARED_PLUGINS = ("tests.fixtures.hub", "tests.fixtures.keycloak", "tests.fixtures.browser")


def pytest_configure(config):
    # The root conftest should list these in ``pytest_plugins``; until it does, load them here.
    for name in SHARED_PLUGINS:
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.import_plugin(name)


PERMIT = "p1"
NAMESPACE = "spe-p1"
WORKSPACE = "ws1"
RESEARCHER = "rita"
REVIEWERS = ("rev-ada", "rev-bob")
# who the test permit names as its reviewers (the service tests use short names)
PERMIT_REVIEWERS = frozenset({*REVIEWERS, "a", "b", "c", "d"})
MAX_FILE = 20 * 1024 * 1024
ALLOWED = ["csv", "tsv", "txt", "json", "png", "md", "bin"]


def memory_store() -> MemoryStore:
    store = MemoryStore()
    pol = ExportPolicy(reviewers_required=2, retention_days=30,
                       thresholds=Thresholds(allowed_types=ALLOWED, max_file_bytes=MAX_FILE, min_cell_count=10))
    store.add_permit(PermitInfo(name=PERMIT, phase="Active", members=frozenset({RESEARCHER}),
                                reviewers=PERMIT_REVIEWERS, policy=pol))
    store.add_permit(PermitInfo(name="p-suspended", phase="Suspended", members=frozenset({RESEARCHER}), policy=pol))
    # a second permit in which a reviewer of p1 is herself a researcher (reviewed by rev-bob)
    store.add_permit(PermitInfo(name="p2", phase="Active", members=frozenset({"rev-ada"}),
                                reviewers=frozenset({"rev-bob", "a"}), policy=pol))
    store.add_workspace(WorkspaceInfo(NAMESPACE, WORKSPACE, PERMIT))
    store.add_workspace(WorkspaceInfo("spe-p-suspended", "ws2", "p-suspended"))
    store.add_workspace(WorkspaceInfo("spe-p2", "ws-ada", "p2"))
    return store


class ThreadedServer:
    """uvicorn serving an ASGI app in a thread with its own event loop."""

    def __init__(self, app, port: int):
        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning",
                                                    lifespan="on", timeout_keep_alive=30,
                                                    limit_concurrency=500))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"uvicorn-{port}")

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self, timeout: float = 20.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)

    def call(self, coro, timeout: float = 60.0):
        """Run a coroutine on the server's loop (where the service and its store live)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class Gateway:
    url: str
    app: object
    server: ThreadedServer
    store: object
    settings: Settings
    keys: GatewayKeys

    @property
    def svc(self):
        return self.app.state.svc

    def call(self, coro, timeout: float = 60.0):
        return self.server.call(coro, timeout)

    def wait_phase(self, name: str, phases: set[str], timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.call(self.store.find_review(name))
            phase = (obj or {}).get("status", {}).get("phase")
            if phase in phases:
                return obj
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} stayed {phase}, wanted {phases}")
            time.sleep(0.05)

    def audit(self) -> list[dict]:
        return self.svc.audit.entries()


def start_gateway(tmp: Path, store, *, hub_api_url: str, oidc_issuer: str = "", oidc_secret: str = "",
                  port: int | None = None, link_ttl_s: int = 7 * 86400) -> Gateway:
    port = port or free_port()
    secret = tmp / "secret.key"
    secret.write_bytes(secrets.token_bytes(32))
    settings = Settings(data_dir=tmp / "data", secret_file=secret, public_url=f"http://{LOOPBACK}:{port}",
                        host=LOOPBACK, port=port, hub_api_url=hub_api_url, oidc_issuer=oidc_issuer,
                        oidc_client_secret=oidc_secret, link_ttl_s=link_ttl_s, store="memory",
                        sweep_interval_s=3600)
    keys = GatewayKeys.from_secret(secret.read_bytes())
    app = create_app(settings, store, keys=keys)
    server = ThreadedServer(app, port)
    server.start()
    return Gateway(settings.public_url, app, server, store, settings, keys)


@pytest.fixture
def gateway(hub, tmp_path):
    """A gateway over the in-memory store, authenticating researchers against the real hub."""
    gw = start_gateway(tmp_path, memory_store(), hub_api_url=hub.api_url)
    try:
        yield gw
    finally:
        gw.server.stop()
