"""The researcher API (the notebook server's JupyterHub API token) and the release download
(signed link).

Every researcher call acts for the user *and the workspace* the server's token is bound to
(:mod:`.hub_auth`): a namespace or workspace in the request is only checked against it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import audit as act
from .hub_auth import HubAuthError, HubIdentity, token_from_header
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


async def _caller(request: Request) -> HubIdentity:
    token = token_from_header(request.headers.get("authorization"))
    try:
        return await request.app.state.hub.identify(token)
    except HubAuthError as e:
        raise Problem(e.status, e.code, e.message) from None


def _binding(who: HubIdentity) -> tuple[str, str]:
    return who.namespace, who.workspace


async def create_request(request: Request) -> Response:
    who = await _caller(request)
    svc = request.app.state.svc

    async def begin(fields: dict) -> Staging:
        # optional; when sent (before the files), they must name the token's own workspace
        ns, ws = fields.get("namespace") or who.namespace, fields.get("workspace") or who.workspace
        svc.ensure_bound(who.user, _binding(who), ns, ws)
        return await svc.open_request(who.user, who.namespace, who.workspace)
    fields, staging = await read_upload(request, begin)
    obj = await svc.commit_request(staging, fields.get("justification", ""))
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url), status_code=201)


async def list_requests(request: Request) -> Response:
    """The caller's requests from this workspace (another workspace's are its own server's business)."""
    who = await _caller(request)
    svc = request.app.state.svc
    base = request.app.state.settings.public_url
    return JSONResponse({"items": [researcher_view(svc, o, base) for o in await svc.list_own(who.user, _binding(who))]})


async def get_request(request: Request) -> Response:
    who = await _caller(request)
    svc = request.app.state.svc
    obj = await svc.get_own(who.user, request.path_params["name"], _binding(who))
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url))


async def withdraw(request: Request) -> Response:
    who = await _caller(request)
    svc = request.app.state.svc
    obj = await svc.withdraw(who.user, request.path_params["name"], _binding(who))
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url))


async def resubmit(request: Request) -> Response:
    who = await _caller(request)
    svc = request.app.state.svc
    name = request.path_params["name"]

    async def begin(fields: dict) -> Staging:
        return await svc.open_resubmission(who.user, name, _binding(who))
    fields, staging = await read_upload(request, begin)
    obj = await svc.commit_resubmission(staging, fields.get("justification", ""))
    return JSONResponse(researcher_view(svc, obj, request.app.state.settings.public_url))


async def policy(request: Request) -> Response:
    """Pre-flight for ``spe-export``: may this user export from this server's workspace, within
    which limits? (The path may name the workspace; it must be the token's.)"""
    who = await _caller(request)
    svc = request.app.state.svc
    ns = request.path_params.get("namespace", who.namespace)
    ws = request.path_params.get("workspace", who.workspace)
    svc.ensure_bound(who.user, _binding(who), ns, ws)
    _, permit = await svc.authorize_export(who.user, who.namespace, who.workspace)
    p = permit.policy
    return JSONResponse({"permit": permit.name, "user": who.user,
                         "namespace": who.namespace, "workspace": who.workspace,
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
    Route("/api/v1/policy", policy, methods=["GET"]),
    Route("/api/v1/workspaces/{namespace}/{workspace}/policy", policy, methods=["GET"]),
    Route("/download/{namespace}/{name}", download, methods=["GET"]),
]
