"""The plain-dict record of an export request: refusals, uploads, phase moves, check
summaries. Shared by the service and the HTTP layers; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from . import lifecycle
from .lifecycle import Phase
from .store import now_iso

STATUS_FINDINGS_PER_FILE = 200  # keeps the OutputReview well under etcd's object size limit


class Problem(Exception):
    """A refusal with an HTTP status, a stable code for clients, and a message for people."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


@dataclass
class Upload:
    name: str
    data: bytes


def current_files(obj: dict) -> list[dict]:
    """The files of the current round (``spec.files`` is the first round's and immutable)."""
    return obj.get("status", {}).get("files") or obj["spec"]["files"]


def label_value(user: str) -> str:
    v = re.sub(r"[^A-Za-z0-9_.-]", "_", user)[:63].strip("_.-")
    return v or "unknown"


def event(ts: float, phase: Phase, by: str, message: str) -> dict:
    return {"at": now_iso(ts), "phase": phase.value, "by": by, "message": message}


def move(obj: dict, target: Phase, ts: float, by: str, message: str) -> None:
    st = obj.setdefault("status", {})
    try:
        st["phase"] = lifecycle.transition(st.get("phase"), target).value
    except lifecycle.IllegalTransition as e:
        raise Problem(409, "illegal_transition", str(e)) from None
    st.setdefault("history", []).append(event(ts, target, by, message))


def status_checks(report: dict) -> dict:
    files = []
    for f in report.get("files", []):
        findings = [{**x, "severity": str(x.get("severity", "")).upper()} for x in f.get("findings", [])]
        files.append({"name": f.get("name"), "verdict": f.get("verdict"),
                      "findings": findings[:STATUS_FINDINGS_PER_FILE],
                      "truncated": max(0, len(findings) - STATUS_FINDINGS_PER_FILE)})
    return {"verdict": report.get("verdict"), "engine": report.get("engine", ""), "files": files}


def parse_iso(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
