"""The researcher API (JupyterHub API token) and the release download (signed link)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import audit as act
from .hub_auth import HubAuthError, token_from_header
from .lifecycle import Phase
from .release import LinkError, verify_link
from .records import Problem, current_files
from .staging import Staging
from .uploads import read_upload


def problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _public_by(by: str, requester: str) -> str:
    return by if by in (requester, "spe-egress") else "reviewer"


def researcher_view(svc, obj: dict, base_url: str) -> dict:
    """What the requester may see: never who voted how, nor private comments."""
    md, spec, st = obj["metadata"], obj["spec"], obj.get("status", {})
    requester = spec.get("requester", "")
    from . import decisions
    decided = set(st.get("decidedRounds", []))
    checks = st.get("checks") or {}
    view = {
        "id": md["name"], "namespace": md["namespace"], "workspace": spec.get("workspace"),
        "permit": st.get("permit"), "phase": st.get("phase", Phase.SUBMITTED.value),
        "round": st.get("round", 1), "requester": requester, "justification": spec.get("justification"),
        "files": current_files(obj), "submittedAt": st.get("submittedAt"),
        "reviewersRequired": st.get("reviewersRequired"),
        "checks": {"verdict": checks.get("verdict"), "files": [
            {"name": f.get("name"), "verdict": f.get("verdict"),
             "findings": [{"check": x.get("check"), "severity": x.get("severity"), "message": x.get("message"),
                           "location": x.get("location")} for x in f.get("findings", [])]}
            for f in checks.get("files", [])]} if checks else None,
        "comments": decisions.public_comments(st.get("decisions", []), decided),
        "history": [{"at": h.get("at"), "phase": h.get("phase"), "by": _public_by(h.get("by", ""), requester),
                     "message": h.get("message") if h.get("by") in (requester, "spe-egress") else ""}
                    for h in st.get("history", [])],
    }
    path = svc.download_path(obj)
    if path:
        rel = st["release"]
        view["download"] = {"url": base_url.rstrip("/") + path, "expiresAt": rel.get("expiresAt"),
                            "files": [current_files(obj)[i]["name"] for i in rel.get("approvedFiles", [])]}
    return view


async def _user(request: Request) -> str:
    token = token_from_header(request.headers.get("authorization"))
    try:
        return await request.app.state.hub.user_for(token)
    except HubAuthError as e:
        raise Problem(e.status, "unauthenticated" if e.status == 401 else "hub_unavailable", e.message) from None


async def create_request(request: Request) -> Response:
    user = await _user(request)
    svc = request.app.state.svc

    async def begin(fields: dict) -> Staging:
        ns, ws = fields.get("namespace", ""), fields.get("workspace", "")
        if not ns or not ws:
            raise Problem(400, "fields_after_files", "send the namespace and workspace fields before the files")
        return await svc.open_request(user, ns, ws)
    fields, staging = await read_upload(request, begin)
    obj = await svc.commit_request(staging, fields.get("justification", ""))
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url), status_code=201)


async def list_requests(request: Request) -> Response:
    user = await _user(request)
    svc = request.app.state.svc
    base = request.app.state.settings.public_url
    return JSONResponse({"items": [researcher_view(svc, o, base) for o in await svc.list_own(user)]})


async def get_request(request: Request) -> Response:
    user = await _user(request)
    svc = request.app.state.svc
    obj = await svc.get_own(user, request.path_params["name"])
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url))


async def withdraw(request: Request) -> Response:
    user = await _user(request)
    svc = request.app.state.svc
    obj = await svc.withdraw(user, request.path_params["name"])
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url))


async def resubmit(request: Request) -> Response:
    user = await _user(request)
    svc = request.app.state.svc
    name = request.path_params["name"]

    async def begin(fields: dict) -> Staging:
        return await svc.open_resubmission(user, name)
    fields, staging = await read_upload(request, begin)
    obj = await svc.commit_resubmission(staging, fields.get("justification", ""))
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url))


async def policy(request: Request) -> Response:
    """Pre-flight for ``spe-export``: may this user export from this workspace, within which limits?"""
    user = await _user(request)
    svc = request.app.state.svc
    _, permit = await svc.authorize_export(user, request.path_params["namespace"], request.path_params["workspace"])
    p = permit.policy
    return JSONResponse({"permit": permit.name, "user": user,
                         "maxFileBytes": min(p.thresholds.max_file_bytes, request.app.state.settings.max_request_bytes),
                         "maxFiles": p.max_files, "allowedFileTypes": list(p.thresholds.allowed_types),
                         "reviewersRequired": p.reviewers_required,
                         "maxRequestBytes": request.app.state.settings.max_request_bytes})


async def download(request: Request) -> Response:
    app = request.app
    ns, name = request.path_params["namespace"], request.path_params["name"]
    q = request.query_params
    try:
        link = verify_link(app.state.keys.links, ns, name, q.get("round"), q.get("exp"), q.get("sig"),
                           app.state.svc.clock())
    except LinkError as e:
        client = request.client.host if request.client else "unknown"
        app.state.svc.audit.record(f"client:{client}", act.EXPORT_DOWNLOAD, f"{ns}/{name}", outcome="denied",
                                   details={"reason": str(e)})
        raise Problem(403, "bad_link", str(e)) from None
    fname, bundle = await app.state.svc.download(ns, name, link.round,
                                                 request.client.host if request.client else "")
    return Response(bundle, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{fname}"', "Cache-Control": "no-store"})


routes = [
    Route("/api/v1/requests", create_request, methods=["POST"]),
    Route("/api/v1/requests", list_requests, methods=["GET"]),
    Route("/api/v1/requests/{name}", get_request, methods=["GET"]),
    Route("/api/v1/requests/{name}/withdraw", withdraw, methods=["POST"]),
    Route("/api/v1/requests/{name}/resubmit", resubmit, methods=["POST"]),
    Route("/api/v1/workspaces/{namespace}/{workspace}/policy", policy, methods=["GET"]),
    Route("/download/{namespace}/{name}", download, methods=["GET"]),
]
