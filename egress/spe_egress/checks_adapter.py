"""The one place that calls the automatic disclosure checks (``spe_egress.checks``).

The service works with plain dicts (a report's ``to_dict()``), so the engine's types stay
behind this module. Until the engine is installed, a small stand-in applies the two rules
the service needs to work end to end (size/type limits and small cell counts in CSV), marked
``engine: "fallback"`` in every report so no one mistakes it for the real rule set.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

try:  # the real engine (another engineer's library)
    from spe_egress import checks as _engine  # type: ignore[attr-defined]
    HAVE_ENGINE = hasattr(_engine, "run_checks")
except ImportError:  # pragma: no cover - depends on the tree
    _engine = None
    HAVE_ENGINE = False


@dataclass(frozen=True)
class Thresholds:
    """The export policy's limits that the checks apply (from the DataPermit)."""

    allowed_types: list[str] = field(default_factory=lambda: ["csv", "tsv", "txt", "json", "png", "jpg", "pdf", "md", "html"])
    max_file_bytes: int = 100 * 1024 * 1024
    min_cell_count: int = 10
    dominance_n: int = 2
    dominance_k: float = 0.9
    p_ratio: float = 0.1
    zeros_disclosive: bool = True
    allow_record_level: bool = False


def run(files: list[tuple[str, bytes]], t: Thresholds, pseudonymous_ids: AbstractSet[str],
        released_tables: list[dict]) -> dict:
    """Run every check over the files; return the report as a dict (``verdict``, ``files``)."""
    if HAVE_ENGINE:
        policy = _engine.CheckPolicy(
            allowed_types=list(t.allowed_types), max_file_bytes=t.max_file_bytes,
            min_cell_count=t.min_cell_count, dominance_n=t.dominance_n,
            dominance_k=t.dominance_k, p_ratio=t.p_ratio, zeros_disclosive=t.zeros_disclosive,
            allow_record_level=t.allow_record_level)
        ctx = _engine.CheckContext(pseudonymous_ids=pseudonymous_ids,
                                   released_tables=list(released_tables))
        report = _engine.run_checks([_engine.FileInput(name=n, data=d) for n, d in files], policy, ctx)
        out = report.to_dict()
        out.setdefault("engine", "spe_egress.checks")
        return out
    return _fallback_run(files, t)


def sign(report: dict, key: bytes) -> dict:
    """The signed check record that goes into the release bundle and the audit trail."""
    if HAVE_ENGINE and hasattr(_engine, "sign_report"):
        signed = _engine.sign_report(report, key)
        return signed if isinstance(signed, dict) else {"report": report, "signature": signed}
    body = json.dumps(report, sort_keys=True, separators=(",", ":")).encode()
    return {"report": report, "signature": {"alg": "HMAC-SHA256",
                                            "value": hmac.new(key, body, hashlib.sha256).hexdigest()}}


def verify(record: dict, key: bytes) -> bool:
    if HAVE_ENGINE and hasattr(_engine, "verify_report_signature"):
        return bool(_engine.verify_report_signature(record, key))
    body = json.dumps(record.get("report"), sort_keys=True, separators=(",", ":")).encode()
    want = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, str(record.get("signature", {}).get("value", "")))


def fingerprint(name: str, data: bytes) -> dict | None:
    """A ledger entry for a released table (for the differencing check), or None."""
    if HAVE_ENGINE and hasattr(_engine, "released_table_fingerprint"):
        try:
            return _engine.released_table_fingerprint(name, data)
        except Exception:  # noqa: BLE001 - not a table: nothing to record
            return None
    return None


# --- the stand-in ------------------------------------------------------------------------

def _finding(check: str, severity: str, message: str, location: dict | None = None) -> dict:
    return {"check": check, "severity": severity, "message": message, "location": location or {}}


def _fallback_file(name: str, data: bytes, t: Thresholds) -> dict:
    findings: list[dict] = []
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in t.allowed_types:
        findings.append(_finding("file_type", "BLOCK", f"files of type '{ext or 'none'}' may not leave"))
    if len(data) > t.max_file_bytes:
        findings.append(_finding("file_size", "BLOCK", f"{len(data)} bytes is over the limit of {t.max_file_bytes}"))
    if ext in ("csv", "tsv"):
        try:
            rows = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t" if ext == "tsv" else ","))
        except UnicodeDecodeError:
            rows = []
        header = rows[0] if rows else []
        for r, row in enumerate(rows[1:]):
            for c, cell in enumerate(row):
                try:
                    v = float(cell)
                except ValueError:
                    continue
                if 0 < v < t.min_cell_count or (v == 0 and t.zeros_disclosive and c > 0):
                    findings.append(_finding(
                        "small_count", "BLOCK",
                        f"cell value {cell} is below the minimum count of {t.min_cell_count}",
                        {"row": r, "column": header[c] if c < len(header) else str(c), "col_index": c}))
    sev = {f["severity"] for f in findings}
    verdict = "block" if "BLOCK" in sev else "review" if "WARN" in sev else "pass"
    return {"name": name, "size": len(data), "verdict": verdict, "findings": findings}


def _fallback_run(files: list[tuple[str, bytes]], t: Thresholds) -> dict:
    per = [_fallback_file(n, d, t) for n, d in files]
    verdicts = {f["verdict"] for f in per}
    verdict = "block" if "block" in verdicts else "review" if "review" in verdicts else "pass"
    return {"engine": "fallback", "verdict": verdict, "files": per}
