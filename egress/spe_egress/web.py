"""The reviewer web page: OpenID Connect login, the queue, one request, the vote."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from spe_api.subjects import same_subject

from . import audit as act
from . import render
from .oidc import OIDCError
from .records import Problem, current_files

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _csrf(request: Request) -> str:
    tok = request.session.get("csrf")
    if not tok:
        tok = request.session["csrf"] = secrets.token_urlsafe(32)
    return tok


def _page(request: Request, name: str, ctx: dict, status: int = 200) -> Response:
    ctx = {"request": request, "user": request.session.get("user"), "csrf": _csrf(request), **ctx}
    return TEMPLATES.TemplateResponse(request, name, ctx, status_code=status)


def _reviewer(request: Request) -> dict | None:
    user = request.session.get("user")
    if not user or user.get("exp", 0) < time.time():
        return None
    return user


class LoginRequired(Exception):
    pass


def _require(request: Request) -> dict:
    user = _reviewer(request)
    if user is None:
        raise LoginRequired()
    if request.app.state.settings.reviewer_role not in user.get("roles", []):
        raise Problem(403, "not_reviewer", f"{user['username']} does not hold the role "
                      f"{request.app.state.settings.reviewer_role}")
    return user


async def _check_csrf(request: Request, form) -> None:
    sent = form.get("csrf", "")
    if not sent or not secrets.compare_digest(str(sent), str(request.session.get("csrf", ""))):
        raise Problem(403, "csrf", "the form is stale or forged (CSRF check failed); reload the page")
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != request.app.state.public_origin:
        raise Problem(403, "csrf", "the form was posted from another site")


def _redirect_uri(request: Request) -> str:
    return request.app.state.settings.public_url.rstrip("/") + "/review/callback"


async def login(request: Request) -> Response:
    oidc = request.app.state.oidc
    if oidc is None:
        raise Problem(503, "no_oidc", "reviewer login is not configured")
    start = await oidc.start(_redirect_uri(request))
    request.session["oidc"] = {"state": start.state, "nonce": start.nonce, "verifier": start.verifier}
    return RedirectResponse(start.url, status_code=303)


async def callback(request: Request) -> Response:
    pending = request.session.pop("oidc", None)
    q = request.query_params
    if not pending or not q.get("state") or not secrets.compare_digest(q["state"], pending["state"]):
        raise Problem(400, "bad_login", "this login answer does not belong to a login started here; try again")
    if q.get("error"):
        raise Problem(401, "login_failed", f"login failed: {q.get('error_description') or q['error']}")
    try:
        ident = await request.app.state.oidc.finish(q.get("code", ""), _redirect_uri(request),
                                                    pending["nonce"], pending["verifier"])
    except OIDCError as e:
        raise Problem(401, "login_failed", str(e)) from None
    has_role = request.app.state.settings.reviewer_role in ident.roles
    # recorded before the session exists: a login that cannot be audited does not happen
    request.app.state.svc.audit_all([(ident.username, act.REVIEWER_LOGIN, "egress-review",
                                       {"outcome": "success" if has_role else "denied",
                                        "details": {"sub": ident.subject}})])
    request.session.clear()
    request.session["user"] = {"username": ident.username, "name": ident.name, "sub": ident.subject,
                               "roles": sorted(ident.roles),
                               "exp": int(time.time()) + request.app.state.settings.session_max_age_s}
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse("/review/", status_code=303)


async def logout(request: Request) -> Response:
    async with request.form(max_fields=5) as form:
        await _check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/review/signed-out", status_code=303)


async def signed_out(request: Request) -> Response:
    return _page(request, "signed_out.html", {})


async def queue(request: Request) -> Response:
    user = _require(request)
    items = await request.app.state.svc.queue(user["username"])
    rows = []
    for o in items:
        st = o["status"]
        voted = any(same_subject(d.get("reviewer"), user["username"]) and d.get("round") == st.get("round")
                    for d in st.get("decisions", []))
        rows.append({"id": o["metadata"]["name"], "namespace": o["metadata"]["namespace"],
                     "requester": o["spec"]["requester"], "workspace": o["spec"]["workspace"],
                     "files": len(current_files(o)), "verdict": (st.get("checks") or {}).get("verdict"),
                     "submitted": st.get("submittedAt"), "round": st.get("round"), "voted": voted,
                     "votes": len({d["reviewer"] for d in st.get("decisions", []) if d.get("round") == st.get("round")}),
                     "required": st.get("reviewersRequired")})
    return _page(request, "queue.html", {"items": rows})


async def detail(request: Request) -> Response:
    user = _require(request)
    svc = request.app.state.svc
    name = request.path_params["name"]
    obj = await svc.for_reviewer(user["username"], name)
    st = obj["status"]
    round_ = int(st.get("round", 1))
    checks = (st.get("checks") or {}).get("files", [])
    files = []
    for i, f in enumerate(current_files(obj)):
        findings = checks[i]["findings"] if i < len(checks) else []
        entry = {"index": i, "name": f["name"], "size": f["size"], "sha256": f["sha256"],
                 "verdict": checks[i].get("verdict") if i < len(checks) else None, "findings": findings,
                 "kind": "pending", "view": None}
        if st.get("phase") not in ("Submitted", "Checking") and svc.quarantine.exists(obj["metadata"]["namespace"], name):
            try:
                _, data = await svc.reviewer_file(user["username"], name, i)
                entry["kind"] = render.kind_of(f["name"], data)
                if entry["kind"] == "table":
                    entry["view"] = render.render_table(f["name"], data, findings)
                elif entry["kind"] == "text":
                    entry["view"] = render.render_text(data, findings)
            except Exception as e:  # noqa: BLE001 - show the reviewer what went wrong
                entry["kind"], entry["view"] = "error", str(e)
        files.append(entry)
    mine = [d for d in st.get("decisions", []) if same_subject(d.get("reviewer"), user["username"])
            and d.get("round") == round_]
    return _page(request, "detail.html", {
        "r": obj, "st": st, "files": files, "round": round_, "voted": bool(mine),
        "can_vote": st.get("phase") == "AwaitingReview" and not mine,
        "decisions": st.get("decisions", []), "message": request.query_params.get("msg")})


async def raw_file(request: Request) -> Response:
    user = _require(request)
    name, idx = request.path_params["name"], int(request.path_params["index"])
    fname, data = await request.app.state.svc.reviewer_file(user["username"], name, idx)
    mime = render.image_type(data)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    if mime:
        return Response(data, media_type=mime, headers=headers)
    safe = "".join(ch for ch in fname if ch.isalnum() or ch in "._-") or "file"
    headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return Response(data, media_type="application/octet-stream", headers=headers)


async def vote(request: Request) -> Response:
    user = _require(request)
    name = request.path_params["name"]
    async with request.form(max_fields=3000) as form:
        await _check_csrf(request, form)
        ballot: dict[int, dict] = {}
        for key in form.keys():
            if key.startswith("vote-") and key[5:].isdigit():
                i = int(key[5:])
                ballot[i] = {"vote": form.get(key), "comment": form.get(f"comment-{i}", ""),
                             "visibility": form.get(f"visibility-{i}", "private")}
    try:
        await request.app.state.svc.vote(user["username"], name, ballot)
    except Problem as p:
        if p.code == "bad_vote":
            return RedirectResponse(f"/review/r/{name}?msg=" + _q(p.message), status_code=303)
        raise
    return RedirectResponse(f"/review/r/{name}?msg=" + _q("Your vote is recorded."), status_code=303)


def _q(s: str) -> str:
    from urllib.parse import quote
    return quote(s)


async def root(request: Request) -> Response:
    return RedirectResponse("/review/", status_code=303)


async def healthz(request: Request) -> Response:
    return Response("ok", media_type="text/plain")


def error_page(request: Request, status: int, message: str) -> Response:
    return _page(request, "error.html", {"status": status, "message": message}, status=status)


routes = [
    Route("/", root), Route("/healthz", healthz),
    Route("/review/login", login), Route("/review/callback", callback),
    Route("/review/logout", logout, methods=["POST"]), Route("/review/signed-out", signed_out),
    Route("/review/", queue), Route("/review/r/{name}", detail),
    Route("/review/r/{name}/files/{index:int}", raw_file),
    Route("/review/r/{name}/vote", vote, methods=["POST"]),
]
