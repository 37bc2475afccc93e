"""The ingest run: discover, de-identify in parallel, write, then check.

Phases:

1. walk SRC (sorted, streaming) and hand chunks of relative paths to worker
   processes;
2. each worker reads a file, de-identifies it in memory (``deid``) and
   writes the result atomically (temporary file, then an exclusive link to
   its final name), returning only a small record;
3. the main process appends every record to ``DST/.spe-ingest/journal.jsonl``
   (which makes an interrupted run resumable), then removes pixel duplicates,
   measures k-anonymity, and writes ``report.json`` and the signed
   ``manifest.json``.

Inputs are named in DST only by a keyed hash of their relative path, and on
stderr by that identifier too: source paths often carry patients' names. Their
original paths are printed to stderr only when asked for (``show_paths``), never
written under DST.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__, manifest as mf
from .deid import QI_TAGS, T, Deidentifier
from .keys import DATE_SHIFT_DAYS, Keys
from .profile import CLEAN_PIXEL_DATA, Profile
from .results import RunResult, finish

STATE_DIR = ".spe-ingest"
JOURNAL = "journal.jsonl"
CHUNK = 48
OCR_CHUNK = 4
QI_FIELD = {T["PatientAge"]: "age", T["PatientSex"]: "sex", T["PatientSize"]: "size",
            T["PatientWeight"]: "weight", T["InstitutionName"]: "institution",
            T["EthnicGroup"]: "ethnic_group", T["StudyDate"]: "study_date",
            T["PatientBirthDate"]: "birth_date"}
assert set(QI_FIELD) == set(QI_TAGS)


class UsageError(Exception):
    """Bad arguments or a DST that belongs to another run (exit 2)."""


@dataclass
class RunConfig:
    src: Path
    dst: Path
    profile: Profile
    dkey: bytes
    site: str
    project: str
    k_threshold: int = 1
    workers: int = 1
    signing_key: object = None
    progress: bool = False
    show_paths: bool = False  # name refused inputs on stderr by their raw source path (opt-in)
    date_shift_max_days: int = DATE_SHIFT_DAYS
    quasi_identifiers: tuple[str, ...] | None = None  # of risk.QI_NAMES; None: all
    quarantine_screenshots: bool = False
    drop_secondary_captures: bool = False
    shard: tuple[int, int] | None = None  # (index, count): de-identify only this shard's inputs
    progress_every: float = 0.0  # > 0: a "progress: N files" line on stderr at most this often


# ------------------------------------------------------------------ workers

_WORKER: dict = {}


def _init_worker(profile: Profile, dkey: bytes, site: str, src: str, dst: str,
                 shift_days: int = DATE_SHIFT_DAYS, screenshots: bool = False,
                 drop_secondary: bool = False) -> None:
    _WORKER["deid"] = Deidentifier(profile, Keys(dkey, shift_days), site,
                                   quarantine_screenshots=screenshots,
                                   drop_secondary_captures=drop_secondary)
    _WORKER["src"] = src
    _WORKER["dst"] = dst
    _WORKER["n"] = 0


def _quiet_worker_signals() -> None:
    """A pool worker leaves signals to the run: SIGTERM (the pool's terminate at the end of every
    run) ends it at once, and Ctrl-C is the parent's to handle. Forked, it would inherit the
    handler ``spe-ingest`` installs for its own process, raise KeyboardInterrupt at that
    terminate and print a traceback to the run's stderr."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_pool_worker(*init) -> None:
    _quiet_worker_signals()
    _init_worker(*init)


def _write_exclusive(dst: str, rel: str, data: bytes, sha: str) -> str:
    """Write DST/rel atomically (temporary file, then an exclusive link).

    Returns 'new', 'same' (an identical file is already there) or, when
    another object with the same SOP Instance UID got there first, the
    relative name of a side file ``.clash-<sha256>-<name>`` that the main
    process resolves deterministically.
    """
    path = os.path.join(dst, rel)
    directory = os.path.dirname(path)
    _WORKER["n"] += 1
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{_WORKER['n']}")
    try:
        fh = open(tmp, "wb")
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        fh = open(tmp, "wb")
    with fh:
        fh.write(data)
    try:
        os.link(tmp, path)
        os.unlink(tmp)
        return "new"
    except FileExistsError:
        pass
    except OSError:  # file systems without hard links
        if not os.path.exists(path):
            os.replace(tmp, path)
            return "new"
    if mf.file_sha256(Path(path)) == sha:
        os.unlink(tmp)
        return "same"
    side = os.path.join(directory, f".clash-{sha}-{os.path.basename(path)}")
    os.replace(tmp, side)
    return os.path.relpath(side, dst)


def _process_chunk(chunk: list[tuple[str, str, str]]) -> list[dict]:
    deid: Deidentifier = _WORKER["deid"]
    src, dst = _WORKER["src"], _WORKER["dst"]
    out = []
    for input_id, rel, stamp in chunk:
        rec = {"input": input_id, "stamp": stamp}
        try:
            with open(os.path.join(src, rel), "rb") as fh:
                data = fh.read()
        except OSError as exc:
            rec.update(outcome="rejected", reason="unreadable")
            rec["_detail"] = f"{exc.__class__.__name__}"
            out.append(rec)
            continue
        try:
            res = deid.run(data)
        except Exception as exc:  # a bug must not stop the run: report it
            rec.update(outcome="rejected", reason="internal-error")
            rec["_detail"] = f"{exc.__class__.__name__}: {exc}"
            out.append(rec)
            continue
        rec.update(outcome=res.outcome, reason=res.reason)
        if res.data is not None:
            sha = hashlib.sha256(res.data).hexdigest()
            state = _write_exclusive(dst, res.relpath, res.data, sha)
            rec.update(path=res.relpath, sha256=sha, size=len(res.data),
                       patient=res.patient, study=res.study, series=res.series,
                       pixel=res.pixel_hash,
                       qi={QI_FIELD[t]: v.decode("latin-1") for t, v in res.qi.items()})
            if state not in ("new", "same"):
                rec["clash"] = state
        if res.pixel_check:
            rec["pixel_check"] = res.pixel_check
            if res.pixel_regions:
                rec["pixel_text"] = res.pixel_regions
            if res.pixel_detail:
                rec["pixel_detail"] = res.pixel_detail
        out.append(rec)
    return out


# ------------------------------------------------------------------ main side

def fingerprint(cfg: RunConfig) -> str:
    key_check = hashlib.blake2b(cfg.dkey, digest_size=16, person=b"spe-ingest-fpr").hexdigest()
    doc = {"version": __version__, "profile": cfg.profile.name,
           "options": sorted(cfg.profile.options), "site": cfg.site,
           "project": cfg.project, "key": key_check}
    # settings that change what is written (absent when default, so older runs still resume)
    if cfg.date_shift_max_days != DATE_SHIFT_DAYS:
        doc["date_shift_max_days"] = cfg.date_shift_max_days
    if cfg.quarantine_screenshots:
        doc["quarantine_screenshots"] = True
    if cfg.drop_secondary_captures:
        doc["drop_secondary_captures"] = True
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _discover(src: Path, keys: Keys):
    """Yield (input id, relative path, stamp) in a stable order, streaming."""
    for dirpath, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError:
                st = None
            if st is not None and not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, src)
            stamp = f"{st.st_size}:{st.st_mtime_ns}" if st else "?"
            yield keys.input_id(rel), rel, stamp


def _chunks(it, size):
    chunk = []
    for item in it:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def shard_journal_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}.jsonl"


def in_shard(input_id: str, shard: tuple[int, int]) -> bool:
    """Inputs are spread over shards by their keyed identifier: stable, even, no coordination."""
    return int(input_id[:8], 16) % shard[1] == shard[0]


def _read_journal(journal: Path, fpr: str, done: dict[str, dict]) -> None:
    with journal.open() as fh:
        header = json.loads(fh.readline() or "{}")
        if header.get("fingerprint") != fpr:
            raise UsageError(f"DST {journal.parent.parent} holds a run with other arguments "
                             "(profile, options, site, project or key)")
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                break  # a torn last line from an interrupted run
            done[rec["input"]] = rec


def _prepare_dst(cfg: RunConfig, fpr: str) -> tuple[dict, Path]:
    """Check DST and load what earlier runs did: the run's own journal and, for a whole run,
    the journals of shard runs (``--shard``) into the same DST, so that a whole run after
    its shards is their merge (it reuses their records and de-identifies only what is left)."""
    dst = cfg.dst
    state = dst / STATE_DIR
    journal = state / (shard_journal_name(*cfg.shard) if cfg.shard else JOURNAL)
    done: dict[str, dict] = {}
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"DST {dst} exists and is not a directory")
    if dst.exists() and any(dst.iterdir()) and not state.is_dir():
        raise UsageError(f"DST {dst} is not empty and holds no spe-ingest run")
    state.mkdir(parents=True, exist_ok=True)
    if not cfg.shard:
        for shard_journal in sorted(state.glob("shard-*-of-*.jsonl")):
            _read_journal(shard_journal, fpr, done)
    if journal.is_file():
        _read_journal(journal, fpr, done)
    else:
        journal.write_text(json.dumps({"fingerprint": fpr}) + "\n")
    for area in mf.AREAS:  # leftovers of an interrupted run
        root = dst / area
        if root.is_dir():
            for dirpath, _d, names in os.walk(root):
                for name in names:
                    if name.startswith(".tmp-"):
                        os.unlink(os.path.join(dirpath, name))
    return done, journal


class _Progress:
    def __init__(self, enabled: bool, total: int | None):
        self.enabled, self.total = enabled, total
        self.start = time.monotonic()
        self.last = 0.0
        self.every = 0.0

    def update(self, done: int, final: bool = False) -> None:
        if self.every and not self.enabled:
            # One plain line at a time for a log reader (the operator shows it as the Dataset's
            # progress while its ingest Job runs).
            now = time.monotonic()
            if final or now - self.last >= self.every:
                self.last = now
                print(f"spe-ingest: progress: {done} files", file=sys.stderr, flush=True)
            return
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        msg = f"\r{done} files, {rate:.0f} files/s"
        if self.total:
            eta = (self.total - done) / rate if rate else 0
            msg += f", {done * 100 // max(self.total, 1)}%, ETA {eta:.0f}s"
        sys.stderr.write(msg + ("\n" if final else ""))
        sys.stderr.flush()


def run(cfg: RunConfig) -> RunResult:
    started = time.monotonic()
    if CLEAN_PIXEL_DATA in cfg.profile.options:
        from . import ocr   # numpy and Tesseract only when the option is on
        try:   # fail at start, never skip the option silently
            ocr.check()
        except ocr.TesseractMissing as exc:
            raise UsageError(str(exc)) from None
    src, dst = cfg.src.resolve(), cfg.dst.resolve()
    if not src.is_dir():
        raise UsageError(f"SRC {cfg.src} is not a directory")
    if dst == src or src in dst.parents or dst in src.parents:
        raise UsageError("SRC and DST must not contain each other")
    fpr = fingerprint(cfg)
    done, journal = _prepare_dst(cfg, fpr)
    keys = Keys(cfg.dkey)
    total = sum(1 for _ in _discover(src, keys)) if cfg.progress else None
    progress = _Progress(cfg.progress, total)
    progress.every = cfg.progress_every

    records: list[dict] = []

    def pending():
        for item in _discover(src, keys):
            if cfg.shard and not in_shard(item[0], cfg.shard):
                continue
            prev = done.get(item[0])
            if (prev is not None and prev.get("stamp") == item[2]
                    and (not prev.get("path") or (dst / prev["path"]).is_file())):
                records.append(prev)
                continue
            yield item

    init = (cfg.profile, cfg.dkey, cfg.site, str(src), str(dst), cfg.date_shift_max_days,
            cfg.quarantine_screenshots, cfg.drop_secondary_captures)
    with journal.open("a") as jf:
        def take(batch, rels):
            for rec, rel in zip(batch, rels):
                detail = rec.pop("_detail", "")
                if rec["outcome"] == "rejected":
                    shown = rel if cfg.show_paths else f"input {rec['input']}"
                    print(f"spe-ingest: {rec['reason']}: {shown}"
                          + (f" ({detail})" if detail else ""), file=sys.stderr)
                jf.write(json.dumps(rec, sort_keys=True) + "\n")
                records.append(rec)
            jf.flush()
            progress.update(len(records))

        # OCR takes ~100x longer per file: small chunks keep every worker busy
        chunks = _chunks(pending(), OCR_CHUNK if CLEAN_PIXEL_DATA in cfg.profile.options
                         else CHUNK)
        if cfg.workers <= 1:
            _init_worker(*init)
            for chunk in chunks:
                take(_process_chunk(chunk), [c[1] for c in chunk])
        else:
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            rels_by_first: dict[str, list[str]] = {}

            def feed():
                for chunk in chunks:
                    rels_by_first[chunk[0][0]] = [c[1] for c in chunk]
                    yield chunk
            with ctx.Pool(cfg.workers, _init_pool_worker, init) as pool:
                for batch in pool.imap_unordered(_process_chunk, feed()):
                    take(batch, rels_by_first.pop(batch[0]["input"], [""] * len(batch)))
    progress.update(len(records), final=True)
    if cfg.shard:
        return shard_result(cfg, records, started)
    return finish(cfg, dst, records, started, journal, fpr)


def shard_result(cfg: RunConfig, records: list[dict], started: float) -> RunResult:
    """A shard's end: its records are journalled; k, the report and the signed manifest come
    from the whole run that merges the shards (the same arguments, without ``--shard``)."""
    outcomes: dict[str, int] = {}
    for rec in records:
        outcomes[rec["outcome"]] = outcomes.get(rec["outcome"], 0) + 1
    elapsed = time.monotonic() - started
    report = {"tool": "spe-ingest", "version": __version__, "status": "shard",
              "shard": {"index": cfg.shard[0], "count": cfg.shard[1]},
              "counts": {"inputs": len(records), **outcomes},
              "timings": {"seconds": round(elapsed, 3), "workers": cfg.workers}}
    return RunResult(0, report, "")
