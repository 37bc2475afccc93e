"""Assembles the gateway: settings, keys, store, service, authenticators and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from . import api, web
from .audit import Auditor
from .hub_auth import HubAuthenticator
from .keys import GatewayKeys, read_secret_file
from .oidc import OIDCClient
from .quarantine import Quarantine, QuarantineError
from .records import Problem
from .service import EgressService
from .settings import Settings
from .store import Store

log = logging.getLogger("spe_egress")

PAGE_CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {k.lower() for k, _ in headers}
                for k, v in ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                             (b"x-frame-options", b"DENY"), (b"content-security-policy", PAGE_CSP.encode())):
                    if k not in present:
                        headers.append((k, v))
            await send(message)
        await self.app(scope, receive, send_wrapper)


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


async def _problem(request: Request, exc: Problem) -> Response:
    if request.url.path.startswith("/review"):
        return web.error_page(request, exc.status, exc.message)
    return api.problem(exc.status, exc.code, exc.message)


async def _login_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/review/login", status_code=303)


async def _quarantine_error(request: Request, exc: QuarantineError) -> Response:
    log.error("quarantine: %s", exc)
    return await _problem(request, Problem(500, "quarantine", str(exc)))


def create_app(settings: Settings, store: Store, *, hub: HubAuthenticator | None = None,
               oidc: OIDCClient | None = None, keys: GatewayKeys | None = None,
               clock: Callable[[], float] = time.time) -> Starlette:
    keys = keys or GatewayKeys.from_secret(read_secret_file(settings.secret_file))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    svc = EgressService(store, Quarantine(settings.quarantine_dir, keys.quarantine), Auditor(settings.audit_file),
                        report_key=keys.reports, link_key=keys.links, record_key=keys.records,
                        ledger_dir=settings.ledger_dir, link_ttl_s=settings.link_ttl_s, clock=clock)
    hub = hub or HubAuthenticator(settings.hub_api_url)
    if oidc is None and settings.oidc_issuer:
        oidc = OIDCClient(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                          roles_claim=settings.oidc_roles_claim, internal_issuer=settings.oidc_internal_issuer)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            await svc.resume()  # checks a stopped gateway left unfinished
        except Exception:  # noqa: BLE001 - the sweep and the next start try again
            log.exception("resuming interrupted checks failed")
        sweeper = asyncio.create_task(_every(svc.sweep, settings.sweep_interval_s, "retention sweep"))
        reaper = asyncio.create_task(_every(svc.reap, settings.reap_interval_s, "purging deleted requests"))
        try:
            yield
        finally:
            sweeper.cancel()
            reaper.cancel()
            await svc.drain()
            await hub.close()
            if oidc is not None:
                await oidc.close()
            await store.close()

    from pathlib import Path
    app = Starlette(
        routes=[*api.routes, *web.routes,
                Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")],
        middleware=[Middleware(SecurityHeaders),
                    Middleware(SessionMiddleware, secret_key=keys.sessions.hex(), session_cookie="spe_egress",
                               max_age=settings.session_max_age_s, same_site="lax",
                               https_only=settings.cookie_secure)],
        exception_handlers={Problem: _problem, web.LoginRequired: _login_required,
                            QuarantineError: _quarantine_error},
        lifespan=lifespan)
    app.state.settings, app.state.svc, app.state.hub, app.state.oidc, app.state.keys = settings, svc, hub, oidc, keys
    app.state.public_origin = _origin(settings.public_url)
    return app


async def _every(job, interval: float, what: str) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except Exception:  # noqa: BLE001 - keep going; the next round retries
            log.exception("%s failed", what)
