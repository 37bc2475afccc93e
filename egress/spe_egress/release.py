"""Release of approved files: signed, time-limited download links and the bundle itself.

A link is ``/download/<namespace>/<review>?round=R&exp=UNIX&sig=HEX`` where ``sig`` is
HMAC-SHA256 over those values. It is a capability: whoever holds it may download until it
expires, so it is only handed to the requester, and every download is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import zipfile
from dataclasses import dataclass
from urllib.parse import urlencode

DEFAULT_LINK_TTL_S = 7 * 24 * 3600
CHECK_RECORD_NAME = "check-record.json"


class LinkError(Exception):
    """A release link that is malformed, forged or expired (the message says which)."""


def _payload(namespace: str, review: str, round_: int, expires: int) -> bytes:
    return f"release\n{namespace}\n{review}\n{int(round_)}\n{int(expires)}".encode()


def sign_link(key: bytes, namespace: str, review: str, round_: int, expires: int) -> str:
    return hmac.new(key, _payload(namespace, review, round_, expires), hashlib.sha256).hexdigest()


def release_path(key: bytes, namespace: str, review: str, round_: int, expires: int) -> str:
    sig = sign_link(key, namespace, review, round_, expires)
    return f"/download/{namespace}/{review}?" + urlencode({"round": int(round_), "exp": int(expires), "sig": sig})


@dataclass(frozen=True)
class VerifiedLink:
    namespace: str
    review: str
    round: int
    expires: int


def verify_link(key: bytes, namespace: str, review: str, round_: str | int | None,
                expires: str | int | None, sig: str | None, now: float) -> VerifiedLink:
    try:
        r = int(round_)  # type: ignore[arg-type]
        exp = int(expires)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LinkError("the download link is incomplete") from None
    if not sig:
        raise LinkError("the download link is not signed")
    expected = sign_link(key, namespace, review, r, exp)
    if not hmac.compare_digest(expected, str(sig)):
        raise LinkError("the download link's signature is not valid")
    if now > exp:
        raise LinkError("the download link has expired; ask for a new one")
    return VerifiedLink(namespace, review, r, exp)


def safe_member_name(name: str, taken: set[str]) -> str:
    """A zip member name with no directories or traversal, unique within the bundle."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "file"
    if base in (".", "..") or base == CHECK_RECORD_NAME:
        base = f"file-{base.strip('.')}" if base != CHECK_RECORD_NAME else f"output-{base}"
    candidate, n = base, 1
    while candidate in taken:
        stem, dot, ext = base.rpartition(".")
        candidate = f"{stem}-{n}.{ext}" if dot and stem else f"{base}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def build_bundle(files: list[tuple[str, bytes]], check_record: dict) -> bytes:
    """A zip of the approved files plus ``check-record.json`` (the signed check record)."""
    buf = io.BytesIO()
    taken: set[str] = set()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zf.writestr(safe_member_name(name, taken), data)
        zf.writestr(CHECK_RECORD_NAME, json.dumps(check_record, indent=2, sort_keys=True))
    return buf.getvalue()
