"""The operator's health endpoint for the kubelet: ``/healthz`` (liveness: the process and its
event loop answer) and ``/readyz`` (readiness: this replica leads and its reconcilers and
webhook are up). Followers are live but not ready, so the webhook's Service sends the API
server's admission requests to the leader only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class HealthState:
    ready_flag: Any = None     # Kopf's ready flag (asyncio.Event or threading.Event)
    elector: Any = None        # a LeaderElector, or None when leader election is off

    def ready(self) -> tuple[bool, str]:
        if self.elector is not None and not self.elector.leading:
            return False, "follower: waiting for the leader's Lease"
        if self.ready_flag is None or not self.ready_flag.is_set():
            return False, "starting"
        return True, "leading" if self.elector is not None else "running"


def app(state: HealthState) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, why = state.ready()
        return web.Response(text=why + "\n", status=200 if ok else 503)

    application = web.Application()
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/readyz", readyz)
    return application


async def serve(state: HealthState, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
