"""``spe-export``: ask the egress gateway to let files out of the workspace, follow the
request, and download the released bundle. Runs inside the notebook server.

Environment (set by the operator and the hub):
  SPE_EGRESS_URL          the gateway, e.g. http://spe-egress.spe-system:8090
  JUPYTERHUB_API_TOKEN    the notebook server's own hub token: it names the researcher *and*
                          the workspace (the gateway files every request under the workspace
                          whose server holds the token, never one the request names)
  SPE_WORKSPACE, SPE_NAMESPACE   optional (or --workspace/--namespace): only checked against
                          the token's workspace, a mismatch is refused

Exit codes: 0 done; 1 other error; 2 usage or configuration; 3 not authenticated;
4 refused (not a member, permit not active); 5 over a size limit; 6 no such request;
7 not released (yet).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_REFUSED, EXIT_LIMIT, EXIT_NOT_FOUND, EXIT_NOT_READY = range(8)
CHUNK = 256 * 1024


class CliError(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message
        super().__init__(message)


def _exit_for(status: int, code: str) -> int:
    if status == 401:
        return EXIT_AUTH
    if status == 413 or code in ("file_too_large", "too_many_files", "request_too_large"):
        return EXIT_LIMIT
    if status == 403:
        return EXIT_REFUSED
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (400, 415):
        return EXIT_USAGE
    return EXIT_ERROR


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
        code, msg = body.get("error", ""), body.get("message", resp.text)
    except ValueError:
        code, msg = "", resp.text[:500] or resp.reason_phrase
    raise CliError(_exit_for(resp.status_code, code), f"{msg} (HTTP {resp.status_code}{', ' + code if code else ''})")


class Config:
    def __init__(self, args: argparse.Namespace, env: dict):
        self.url = (getattr(args, "url", None) or env.get("SPE_EGRESS_URL") or "").rstrip("/")
        self.token = env.get("JUPYTERHUB_API_TOKEN") or ""
        # not needed (the token names the workspace); when known, the gateway checks them
        self.workspace = getattr(args, "workspace", None) or env.get("SPE_WORKSPACE") or ""
        self.namespace = getattr(args, "namespace", None) or env.get("SPE_NAMESPACE") or ""
        if not self.url:
            raise CliError(EXIT_USAGE, "SPE_EGRESS_URL is not set: this command runs inside an SPE workspace")
        if not self.token:
            raise CliError(EXIT_USAGE, "JUPYTERHUB_API_TOKEN is not set: start this from your workspace's notebook")

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"token {self.token}"},
                            timeout=httpx.Timeout(timeout, connect=10.0), trust_env=False)


def collect(paths: list[str]) -> list[tuple[str, Path]]:
    """(name sent to the gateway, local path) for every file; directories are walked."""
    out: list[tuple[str, Path]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise CliError(EXIT_USAGE, f"{raw}: no such file or directory")
        if p.is_dir():
            base = p.resolve().parent
            for f in sorted(x for x in p.resolve().rglob("*") if x.is_file()):
                out.append((f.relative_to(base).as_posix(), f))
        else:
            out.append((p.name, p.resolve()))
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CliError(EXIT_USAGE, f"two files would be sent under the same name: {', '.join(dupes)}")
    if not out:
        raise CliError(EXIT_USAGE, "no files to export")
    return out


class Progress:
    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self._last = 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last > 0.2 or self.done >= self.total:
            self._last = now
            pct = 100.0 * self.done / self.total if self.total else 100.0
            self.stream.write(f"\ruploading {self.done / 1e6:8.1f} / {self.total / 1e6:.1f} MB ({pct:5.1f}%)")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


def multipart(fields: dict[str, str], files: list[tuple[str, Path]], progress: Progress | None = None
              ) -> tuple[str, int, Iterator[bytes]]:
    """A streamed multipart/form-data body: (content type, length, chunks)."""
    boundary = "spe-" + uuid.uuid4().hex
    parts: list[tuple[bytes, Path | None]] = []
    for k, v in fields.items():
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
                      + v.encode() + b"\r\n", None))
    for name, path in files:
        quoted = name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        parts.append((head, path))
    tail = f"--{boundary}--\r\n".encode()
    length = len(tail) + sum(len(h) + (p.stat().st_size + 2 if p else 0) for h, p in parts)

    def gen() -> Iterator[bytes]:
        for head, path in parts:
            yield head
            if path is not None:
                with open(path, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        if progress:
                            progress.add(len(chunk))
                        yield chunk
                yield b"\r\n"
        yield tail
    return f"multipart/form-data; boundary={boundary}", length, gen()


def _policy(cfg: Config, http: httpx.Client) -> dict:
    """The gateway's pre-flight for the token's workspace. A workspace named here (flags or
    environment) is checked: the gateway refuses (and audits) one that is not the token's."""
    if cfg.namespace and cfg.workspace:
        r = http.get(f"/api/v1/workspaces/{cfg.namespace}/{cfg.workspace}/policy")
    else:
        r = http.get("/api/v1/policy")
    _raise_for(r)
    pol = r.json()
    for what, given in (("workspace", cfg.workspace), ("namespace", cfg.namespace)):
        if given and pol.get(what) and given != pol[what]:
            raise CliError(EXIT_REFUSED, f"this notebook's token belongs to workspace {pol['namespace']}/"
                                         f"{pol['workspace']}, not to {what} {given}: run spe-export in that "
                                         "workspace's own notebook")
    return pol


def cmd_request(cfg: Config, args) -> int:
    files = collect(args.paths)
    with cfg.client() as http:
        pol = _policy(cfg, http)
        for name, p in files:
            size = p.stat().st_size
            if size > pol["maxFileBytes"]:
                raise CliError(EXIT_LIMIT, f"{name} is {size} bytes; permit {pol['permit']} allows at most "
                                           f"{pol['maxFileBytes']} bytes per file")
        if len(files) > pol["maxFiles"]:
            raise CliError(EXIT_LIMIT, f"{len(files)} files; permit {pol['permit']} allows {pol['maxFiles']} per request")
        total = sum(p.stat().st_size for _, p in files)
        if pol.get("maxRequestBytes") and total > pol["maxRequestBytes"]:
            raise CliError(EXIT_LIMIT, f"the files are {total} bytes together; the gateway takes at most "
                                       f"{pol['maxRequestBytes']} bytes per request: send them in parts")
        progress = Progress(total) if not args.quiet else None
        fields = {"justification": args.justification}
        if args.resubmit:
            path = f"/api/v1/requests/{args.resubmit}/resubmit"
        else:
            path = "/api/v1/requests"
            fields.update(workspace=pol["workspace"], namespace=pol["namespace"])
        ctype, length, body = multipart(fields, files, progress)
        r = http.post(path, content=body, headers={"Content-Type": ctype, "Content-Length": str(length)})
        _raise_for(r)
        view = r.json()
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        print(f"export request {view['id']}: {view['phase']} ({len(view['files'])} files, "
              f"{view.get('reviewersRequired')} reviewers needed)")
        print(f"follow it with: spe-export status {view['id']}")
    return EXIT_OK


def _print_view(v: dict) -> None:
    print(f"{v['id']}  {v['phase']}  round {v['round']}  workspace {v['namespace']}/{v['workspace']}")
    checks = {f["name"]: f for f in (v.get("checks") or {}).get("files", [])}
    for f in v["files"]:
        c = checks.get(f["name"], {})
        print(f"  {f['name']}  {f['size']} bytes  checks: {c.get('verdict', 'pending')}")
        for x in c.get("findings", []):
            print(f"    {x.get('severity')} {x.get('check')}: {x.get('message')}")
    for c in v.get("comments", []):
        print(f"  reviewer ({c['vote']}) on file {c['file']}: {c['comment']}")
    if v.get("download"):
        print(f"  released: spe-export download {v['id']}   (link valid until {v['download']['expiresAt']})")


def cmd_status(cfg: Config, args) -> int:
    with cfg.client() as http:
        r = http.get(f"/api/v1/requests/{args.id}" if args.id else "/api/v1/requests")
        _raise_for(r)
        body = r.json()
    if args.json:
        print(json.dumps(body, indent=2))
    elif args.id:
        _print_view(body)
    else:
        items = body["items"]
        if not items:
            print("no export requests")
        for v in items:
            print(f"{v['id']}  {v['phase']:<15} {len(v['files'])} files  {v.get('submittedAt') or ''}")
    return EXIT_OK


def cmd_download(cfg: Config, args) -> int:
    with cfg.client(timeout=600.0) as http:
        r = http.get(f"/api/v1/requests/{args.id}")
        _raise_for(r)
        v = r.json()
        if not v.get("download"):
            raise CliError(EXIT_NOT_READY, f"{args.id} is {v['phase']}: nothing is released to download")
        out = Path(args.output or f"{args.id}-bundle.zip")
        tmp = out.with_name(out.name + ".part")
        with http.stream("GET", v["download"]["url"]) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_bytes(CHUNK):
                    fh.write(chunk)
        tmp.replace(out)
    print(f"saved {out} ({out.stat().st_size} bytes): {', '.join(v['download']['files'])}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spe-export", description="Export files from this workspace through review.")
    p.add_argument("--url", help="the egress gateway (default $SPE_EGRESS_URL)")
    p.add_argument("--json", action="store_true", help="print the gateway's answer as JSON")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("request", help="ask to export files (directories are taken whole)")
    r.add_argument("paths", nargs="+", metavar="PATH")
    r.add_argument("--justification", "-j", required=True, help="why the files are needed and why they are safe")
    r.add_argument("--workspace", help="not needed: the notebook's token names its workspace; if given "
                   "(default $SPE_WORKSPACE), it must be that one")
    r.add_argument("--namespace", help="likewise (default $SPE_NAMESPACE)")
    r.add_argument("--resubmit", metavar="ID", help="resubmit a returned request with these files")
    r.add_argument("--quiet", "-q", action="store_true", help="no upload progress")
    s = sub.add_parser("status", help="your requests, or one request in full")
    s.add_argument("id", nargs="?")
    d = sub.add_parser("download", help="download a released request's bundle")
    d.add_argument("id")
    d.add_argument("--output", "-o", help="file to write (default ID-bundle.zip)")
    return p


def main(argv: list[str] | None = None, env: dict | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = Config(args, dict(os.environ) if env is None else env)
        return {"request": cmd_request, "status": cmd_status, "download": cmd_download}[args.command](cfg, args)
    except CliError as e:
        print(f"spe-export: {e.message}", file=sys.stderr)
        return e.code
    except httpx.HTTPError as e:
        print(f"spe-export: cannot reach the egress gateway: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
