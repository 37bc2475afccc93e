"""The end of a run: duplicates, k-anonymity, report, journal, signed manifest.

Runs in the main process once every input has a record (fresh or reused
from the journal of an interrupted run).  Everything here is deterministic
given the records, so a resumed run ends exactly like an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, manifest as mf
from .profile import CLEAN_PIXEL_DATA
from .risk import k_anonymity, qi_record


@dataclass
class RunResult:
    exit_code: int
    report: dict = field(default_factory=dict)
    manifest_digest: str = ""


def _atomic_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _resolve_same_path(dst: Path, path: str, recs: list[dict]) -> None:
    """Several inputs gave one output name (one SOP Instance UID).

    Identical bytes: the same object ingested twice.  Different bytes: two
    objects claiming one SOP Instance UID; the one with the smallest SHA-256
    is kept (so every run keeps the same one), the others are duplicates.
    """
    if len(recs) < 2 and not recs[0].get("clash"):
        return
    winner = min(recs, key=lambda r: (r["sha256"], r["input"]))
    if winner.get("clash") and (dst / winner["clash"]).is_file():
        os.replace(dst / winner["clash"], dst / path)
    for rec in recs:
        rec.pop("clash", None)
        if rec is not winner:
            same = rec["sha256"] == winner["sha256"]
            rec.update(outcome="duplicate",
                       reason="identical-object" if same else "sop-instance-uid")
            rec.pop("path")


def _pixel_report(records: list[dict]) -> dict:
    """What the Clean Pixel Data option did: counts, and per object the
    rectangles blanked (or found and not rewritable) and what could not be
    examined.  Boxes are [x, y, width, height] in pixels of that frame."""
    checks = Counter(r["pixel_check"] for r in records if r.get("pixel_check"))
    objects = []
    for r in records:
        if r.get("path") and (r.get("pixel_text") or r.get("pixel_check") == "not-examinable"):
            item = {"path": r["path"], "check": r["pixel_check"], "outcome": r["outcome"]}
            if r.get("pixel_text"):
                item["regions"] = r["pixel_text"]
            if r.get("pixel_detail"):
                item["detail"] = r["pixel_detail"]
            objects.append(item)
    return {"counts": {"examined": checks["clean"] + checks["cleaned"]
                       + checks["text-not-rewritable"],
                       **{k: checks[k] for k in ("clean", "cleaned", "text-not-rewritable",
                                                 "not-examinable")},
                       "regions": sum(len(r.get("pixel_text", ())) for r in records
                                      if r.get("path"))},
            "objects": sorted(objects, key=lambda o: o["path"])}


def finish(cfg, dst: Path, records: list[dict], started: float,
            journal: Path, fpr: str) -> RunResult:
    records.sort(key=lambda r: r["input"])
    # ---- pixel duplicates: keep one (data before quarantine, then by path)
    by_pixel: dict[str, list[dict]] = defaultdict(list)
    by_path: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        if rec.get("path"):
            by_path[rec["path"]].append(rec)
    for path, recs in by_path.items():
        _resolve_same_path(dst, path, recs)
    for dirpath, _d, names in os.walk(dst):   # stray side files of interrupted runs
        for name in names:
            if name.startswith(".clash-"):
                os.unlink(os.path.join(dirpath, name))
    for rec in records:
        if rec.get("path") and rec.get("pixel"):
            by_pixel[rec["pixel"]].append(rec)
    duplicates = []
    for recs in by_pixel.values():
        if len(recs) < 2:
            continue
        recs.sort(key=lambda r: (not r["path"].startswith("data/"), r["path"]))
        kept = recs[0]
        for extra in recs[1:]:
            try:
                (dst / extra["path"]).unlink()
            except FileNotFoundError:
                pass
            duplicates.append({"kept": kept["path"], "removed": extra["path"]})
            extra.update(outcome="duplicate", reason="pixel-data")
            extra.pop("path")

    # ---- k-anonymity: one record per patient, from accepted objects
    per_patient: dict[str, tuple] = {}
    for rec in sorted((r for r in records if r["outcome"] == "accepted"),
                      key=lambda r: r["path"]):
        per_patient.setdefault(rec["patient"], qi_record(rec.get("qi", {})))
    risk = k_anonymity(per_patient, cfg.k_threshold, cfg.quasi_identifiers)
    refused = risk["refused"]
    data_dir = dst / "data"
    if refused and data_dir.exists():
        shutil.rmtree(data_dir)
    files = []
    for rec in records:
        if rec.get("path") and not (refused and rec["path"].startswith("data/")):
            entry = {"path": rec["path"], "sha256": rec["sha256"], "size": rec["size"]}
            if rec.get("pixel_text"):   # what the Clean Pixel Data option found (no text)
                entry["pixel_text"] = rec["pixel_text"]
            files.append(entry)
    files.sort(key=lambda f: f["path"])

    counts = Counter(r["outcome"] for r in records)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        reasons[r["outcome"]][r.get("reason") or "-"] += 1
    accepted = [r for r in records if r["outcome"] == "accepted"] if not refused else []
    totals = {
        "inputs": len(records),
        "accepted": counts.get("accepted", 0) if not refused else 0,
        "quarantined": counts.get("quarantined", 0),
        "dropped": counts.get("dropped", 0),
        "duplicate": counts.get("duplicate", 0),
        "rejected": counts.get("rejected", 0),
        "patients": len({r["patient"] for r in accepted}),
        "studies": len({r["study"] for r in accepted}),
        "series": len({r["series"] for r in accepted}),
        "instances": len(accepted),
    }
    manifest = {
        "tool": "spe-ingest", "version": __version__,
        "profile": cfg.profile.name, "options": sorted(cfg.profile.options),
        "site": cfg.site, "project": cfg.project,
        "status": "refused" if refused else "accepted",
        "counts": totals, "k_anonymity": {"k": risk["k"], "threshold": cfg.k_threshold},
        "files": files,
    }
    doc = mf.sign(manifest, cfg.signing_key)
    elapsed = time.monotonic() - started
    report = {
        "tool": "spe-ingest", "version": __version__,
        "status": manifest["status"], "counts": totals,
        "efficiency_percent": round(100 * totals["accepted"] / len(records), 1)
        if records else 0.0,
        "outcomes": {k: dict(sorted(v.items())) for k, v in sorted(reasons.items())},
        "rejected": [{"input": r["input"], "reason": r["reason"]}
                     for r in records if r["outcome"] == "rejected"],
        "dropped": [{"input": r["input"], "reason": r["reason"]}
                    for r in records if r["outcome"] == "dropped"],
        "quarantined": [{"path": r["path"], "reason": r["reason"]}
                        for r in records if r["outcome"] == "quarantined" and r.get("path")],
        "duplicates": sorted(duplicates, key=lambda d: d["removed"]),
        "k_anonymity": risk,
        "timings": {"seconds": round(elapsed, 3),
                    "files_per_second": round(len(records) / elapsed, 1) if elapsed else 0,
                    "workers": cfg.workers},
        "manifest_digest": mf.digest(manifest),
    }
    if CLEAN_PIXEL_DATA in cfg.profile.options:
        report["pixel_text"] = _pixel_report(records)
    # the journal now holds each input's final record, so a repeated run
    # reuses them instead of resurrecting files removed as duplicates
    tmp = journal.with_name(journal.name + ".tmp")
    with tmp.open("w") as fh:
        fh.write(json.dumps({"fingerprint": fpr}) + "\n")
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    os.replace(tmp, journal)
    _atomic_json(dst / "report.json", report)
    _atomic_json(dst / mf.MANIFEST, doc)
    return RunResult(3 if refused else 0, report, mf.digest(manifest))
