"""What a finished run tells the one who started it, when that is a Kubernetes Job.

* :func:`summary`: a compact JSON document of the report (status, counts, outcomes by reason,
  efficiency, k) for the container's termination message (``--summary-file
  /dev/termination-log``): the kubelet keeps at most 4096 bytes of it, so the per-input lists
  of ``report.json`` are left out and the outcome tables shrink if they must.
* :func:`pseudonym_hashes`: the lower-case hex SHA-256 of every accepted patient's pseudonym,
  sorted, one per line (``spe-ingest pseudonyms DST``): what the egress gateway's identifier
  check needs, never the pseudonyms themselves.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import manifest as mf
from .pipeline import JOURNAL, STATE_DIR

SUMMARY_LIMIT = 4096  # bytes the kubelet keeps of a termination message


def summary(report: dict, exit_code: int, message: str = "") -> dict:
    """The termination-message document of a run (pure)."""
    doc: dict = {"status": report.get("status", "error"), "exitCode": exit_code}
    if message:
        doc["message"] = message[:1000]
    if "counts" in report:
        doc["counts"] = report["counts"]
    if "outcomes" in report:
        doc["outcomes"] = report["outcomes"]
    if "efficiency_percent" in report:
        doc["efficiencyPercent"] = report["efficiency_percent"]
    risk = report.get("k_anonymity")
    if risk:
        doc["k"] = {"k": risk["k"], "threshold": risk["threshold"],
                    "quasiIdentifiers": risk.get("quasi_identifiers", []),
                    "classesBelowThreshold": len(risk.get("classes_below_threshold", []))}
    if report.get("manifest_digest"):
        doc["manifestDigest"] = report["manifest_digest"]
    if "shard" in report:
        doc["shard"] = report["shard"]
    return doc


def encode_summary(doc: dict) -> bytes:
    """Compact JSON within :data:`SUMMARY_LIMIT` (outcome tables dropped first, then the message)."""
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    for key in ("outcomes", "message"):
        if len(data) <= SUMMARY_LIMIT:
            break
        doc = {k: v for k, v in doc.items() if k != key}
        doc["truncated"] = True
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return data


def pseudonym_hashes(dst: Path) -> list[str]:
    """SHA-256 (hex) of each accepted patient's pseudonym in a finished, accepted run."""
    doc = json.loads((dst / mf.MANIFEST).read_text())
    if doc.get("manifest", {}).get("status") != "accepted":
        raise ValueError(f"{dst} holds no accepted dataset (manifest status "
                         f"{doc.get('manifest', {}).get('status')!r})")
    patients: set[str] = set()
    with (dst / STATE_DIR / JOURNAL).open() as fh:
        fh.readline()  # the header
        for line in fh:
            rec = json.loads(line)
            if rec.get("outcome") == "accepted" and rec.get("patient"):
                patients.add(rec["patient"])
    return sorted(hashlib.sha256(p.encode()).hexdigest() for p in patients)
