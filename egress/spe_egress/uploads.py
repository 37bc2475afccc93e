"""Reads a multipart upload as it arrives, streaming each file into the quarantine.

The body is parsed chunk by chunk (``python-multipart``'s push parser) straight from the
connection, so neither a file nor the request is ever held whole in memory or spooled to a
temporary disk. Limits hold as bytes arrive, with or without a Content-Length (a chunked
upload has none): the gateway's ``max_request_bytes`` for the whole body, and -- once the
request is authorised at its first file (for the workspace its server's token is bound to) --
the permit's per-file size and file count. The first byte over a limit ends the request with
413 and removes everything written; the refusal is audited by the service.

The text fields (``justification``; optionally ``namespace`` and ``workspace``, which must name
the token's workspace) come before the files; ``spe-export`` and every common client send form
fields first.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .records import Problem
from .staging import Staging

MAX_FIELDS = 50
MAX_FIELD_BYTES = 64 * 1024


class _Events:
    """Collects the push parser's callbacks; the async loop acts on them after each chunk."""

    def __init__(self):
        self.items: list[tuple[str, bytes | None]] = []

    def callbacks(self) -> dict:
        add = self.items.append

        def data(kind):
            return lambda d, s, e: add((kind, bytes(d[s:e])))
        return {"on_part_begin": lambda: add(("begin", None)),
                "on_header_field": data("hfield"), "on_header_value": data("hvalue"),
                "on_header_end": lambda: add(("hend", None)),
                "on_headers_finished": lambda: add(("headers", None)),
                "on_part_data": data("data"), "on_part_end": lambda: add(("end", None))}


async def read_upload(request: Request, begin: Callable[[dict], Awaitable[Staging]]
                      ) -> tuple[dict, Staging]:
    """Parse the upload; ``begin(fields)`` authorises it at the first file part (or at the end
    when there is none) and returns the staging the files stream into."""
    limit = request.app.state.settings.max_request_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise Problem(413, "request_too_large", f"the upload is {length} bytes; the gateway takes at most "
                      f"{limit} bytes per request")
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise Problem(415, "not_multipart", "send the files as multipart/form-data")
    events = _Events()
    try:
        parser = MultipartParser(params[b"boundary"], events.callbacks())
    except Exception as e:  # noqa: BLE001
        raise Problem(400, "bad_upload", f"the upload could not be read: {e}") from None
    fields: dict[str, str] = {}
    staging: Staging | None = None
    svc = request.app.state.svc
    state = {"field": b"", "value": b"", "headers": {}, "kind": None, "name": "", "buf": bytearray()}
    received = 0

    async def handle(kind: str, data: bytes | None) -> None:
        nonlocal staging
        if kind == "begin":
            state.update(field=b"", value=b"", headers={}, kind=None, name="", buf=bytearray())
        elif kind == "hfield":
            state["field"] += data
        elif kind == "hvalue":
            state["value"] += data
        elif kind == "hend":
            state["headers"][state["field"].lower()] = state["value"]
            state["field"], state["value"] = b"", b""
        elif kind == "headers":
            disp, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
            name = opts.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in opts:
                if name != "file":
                    state["kind"] = "skip"
                    return
                if staging is None:
                    staging = await begin(fields)
                state["kind"] = "file"
                staging.open(opts[b"filename"].decode("utf-8", "replace") or "file")
            else:
                if len(fields) >= MAX_FIELDS:
                    raise Problem(400, "too_many_fields", f"more than {MAX_FIELDS} form fields")
                state["kind"], state["name"] = "field", name
        elif kind == "data":
            if state["kind"] == "file":
                staging.write(data)
            elif state["kind"] == "field":
                state["buf"] += data
                if len(state["buf"]) > MAX_FIELD_BYTES:
                    raise Problem(413, "field_too_large", f"the form field {state['name']} is over "
                                  f"{MAX_FIELD_BYTES} bytes")
        elif kind == "end":
            if state["kind"] == "file":
                staging.close_file()
            elif state["kind"] == "field":
                fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")
            state["kind"] = None

    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise Problem(413, "request_too_large", f"the upload is over {limit} bytes, the most the gateway "
                              "takes per request")
            try:
                parser.write(chunk)
            except Problem:
                raise
            except Exception as e:  # noqa: BLE001 - a malformed body
                raise Problem(400, "bad_upload", f"the upload could not be read: {e}") from None
            items, events.items[:] = list(events.items), []
            for kind, data in items:
                await handle(kind, data)
        parser.finalize()
        for kind, data in events.items:
            await handle(kind, data)
        if staging is None:
            staging = await begin(fields)
    except Problem as p:
        if staging is not None:
            svc.refuse(staging, p)
        raise
    except BaseException:
        if staging is not None:
            staging.abort()
        raise
    return fields, staging
