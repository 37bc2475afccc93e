"""One audit record: its fields, its canonical form, its hash, and its line in the log.

The record's hash is SHA-256 over the *canonical JSON* of the record without ``hash``:
keys sorted, no whitespace (``","`` and ``":"`` separators), strings as UTF-8 rather than
``\\u`` escapes, no NaN or infinities. The line in the file is exactly those canonical
bytes with ``,"hash":"<64 hex>"`` inserted before the closing brace, so the hashed bytes
are the line minus a fixed 75-byte suffix and a verifier need not re-serialise anything.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

GENESIS_HASH = "0" * 64
HASH_HEAD = b',"hash":"'
#: len(',"hash":"') + 64 hex digits + len('"}')
SUFFIX_LEN = 75

FIELDS = ("action", "actor", "dataset", "details", "outcome", "permit", "prev", "seq", "target",
          "time")

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False).encode


def canonical(obj: Any) -> bytes:
    """The canonical JSON bytes of ``obj`` (sorted keys, no whitespace, UTF-8)."""
    return _encode(obj).encode("utf-8")


def format_time(ns: int) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-21T22:46:49.123456Z``."""
    secs, rem = divmod(ns, 1_000_000_000)
    t = _dt.datetime.fromtimestamp(secs, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1000:06d}Z"


def parse_time(text: str) -> _dt.datetime:
    """Parse a record time or a user's ``--since`` (a date, or a time with or without zone)."""
    t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t


@dataclass(frozen=True, slots=True)
class Record:
    """One appended record. ``line`` is its bytes in the file, newline excluded."""

    seq: int
    time: str
    actor: str
    action: str
    target: str | None
    permit: str | None
    dataset: str | None
    outcome: str
    details: Mapping[str, Any]
    prev: str
    hash: str
    line: bytes = field(repr=False, compare=False, default=b"")

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "actor": self.actor, "action": self.action,
                "target": self.target, "permit": self.permit, "dataset": self.dataset,
                "outcome": self.outcome, "details": dict(self.details), "prev": self.prev,
                "hash": self.hash}

    @property
    def time_ns(self) -> int:
        t = parse_time(self.time)
        return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def seal(body: dict[str, Any]) -> Record:
    """Compute the hash of ``body`` (every field but ``hash``) and build the record and its line."""
    data = canonical(body)
    digest = hashlib.sha256(data).hexdigest()
    line = data[:-1] + HASH_HEAD + digest.encode("ascii") + b'"}'
    return Record(hash=digest, line=line, **body)


def hash_of_line(line: bytes) -> str | None:
    """The hash the line's body really has, when the line has the standard layout; else None."""
    if len(line) > SUFFIX_LEN and line[-SUFFIX_LEN:-66] == HASH_HEAD and line[-2:] == b'"}':
        return hashlib.sha256(line[:-SUFFIX_LEN] + b"}").hexdigest()
    return None


class MalformedRecord(ValueError):
    """A line that is not a well-formed record."""


def parse_line(line: bytes) -> dict[str, Any]:
    """Parse and type-check one line; raises :class:`MalformedRecord` with the reason."""
    try:
        rec = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedRecord(f"not valid JSON ({e})") from None
    if not isinstance(rec, dict):
        raise MalformedRecord("not a JSON object")
    missing = [f for f in (*FIELDS, "hash") if f not in rec]
    if missing:
        raise MalformedRecord(f"missing field(s) {', '.join(missing)}")
    extra = sorted(set(rec) - set(FIELDS) - {"hash"})
    if extra:
        raise MalformedRecord(f"unexpected field(s) {', '.join(extra)}")
    if type(rec["seq"]) is not int or rec["seq"] < 1:
        raise MalformedRecord("seq is not a positive integer")
    for f in ("prev", "hash"):
        v = rec[f]
        if not isinstance(v, str) or len(v) != 64:
            raise MalformedRecord(f"{f} is not a SHA-256 hex digest")
    if not isinstance(rec["details"], dict):
        raise MalformedRecord("details is not an object")
    return rec


def record_from_dict(rec: Mapping[str, Any], line: bytes = b"") -> Record:
    return Record(**{f: rec[f] for f in (*FIELDS, "hash")}, line=line)


def canonical_hash(rec: Mapping[str, Any]) -> str:
    """The hash a parsed record should carry (re-serialising it canonically)."""
    body = {k: v for k, v in rec.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()
