"""The writer: append records to a hash-chained JSON-lines file, safely from many writers.

Concurrency. A ``threading.Lock`` serialises threads of one process; an exclusive
``fcntl.flock`` on a lock file beside the log (``.<name>.lock``, never rotated) serialises
processes, also across containers that mount the same volume. Under the lock the writer
re-reads the tail of the file for the true last ``seq`` and ``hash`` (skipped when the file's
inode and size are what this process left), appends one line with a single ``write`` on an
``O_APPEND`` descriptor, and only then lets go.

Rotation. When the active file reaches ``rotate_bytes`` it is closed with a checkpoint and
renamed ``<stem>-<first seq, 12 digits><suffix>``; the next record goes to a fresh active file
and its ``prev`` is the hash of the old segment's last record, so the chain runs on.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from .acts import Act, action_name, outcome_name
from .checkpoint import Checkpoint, Signer, load_private_key
from .durability import FsyncPolicy
from .record import GENESIS_HASH, MalformedRecord, Record, format_time, parse_line, seal

log = logging.getLogger(__name__)

_CHECKPOINT = Act.AUDIT_CHECKPOINT.value
_TAIL_CHUNK = 8192


class AuditError(RuntimeError):
    """The trail cannot be appended to (its tail is not a valid record, the disk failed, ...)."""


@runtime_checkable
class RecordExporter(Protocol):
    """Receives every record after it is durably appended (OpenTelemetry, in the default set-up)."""

    def export_record(self, record: Record) -> None: ...


@runtime_checkable
class CheckpointPublisher(Protocol):
    """Receives the latest checkpoint; keeps it where the operator keeps state (a ConfigMap)."""

    def publish(self, checkpoint: Checkpoint) -> None: ...


def segment_name(path: Path, first_seq: int) -> Path:
    return path.with_name(f"{path.stem}-{first_seq:012d}{path.suffix}")


def segment_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(re.escape(path.stem) + r"-(\d{12})" + re.escape(path.suffix) + "$")


def list_segments(path: Path) -> list[Path]:
    """The rotated segments of the log at ``path``, oldest first (not the active file)."""
    pat = segment_pattern(path)
    found = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    for name in names:
        m = pat.match(name)
        if m:
            found.append((int(m.group(1)), path.parent / name))
    return [p for _, p in sorted(found)]


def _last_line(fd: int, size: int) -> tuple[bytes | None, bool]:
    """The last complete line of the file and whether a torn (unterminated) fragment follows.
    A final line that lacks only its newline but parses as a record counts as complete."""
    n = min(size, _TAIL_CHUNK)
    last = os.pread(fd, 1, size - 1) if size else b"\n"
    if last != b"\n":
        start = size
        while start > 0:  # find the unterminated line's start
            k = min(start, _TAIL_CHUNK)
            chunk = os.pread(fd, k, start - k)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                start = start - k + cut + 1
                break
            start -= k
        try:
            parse_line(os.pread(fd, size - start, start))
            return os.pread(fd, size - start, start), True
        except MalformedRecord:
            pass
    while True:
        data = os.pread(fd, n, size - n)
        torn = not data.endswith(b"\n")
        body = data if torn else data[:-1]
        if torn:  # drop the fragment after the last newline
            cut = body.rfind(b"\n")
            body = body[:cut] if cut >= 0 else b""
            if cut < 0 and n == size:
                return None, True
        start = body.rfind(b"\n")
        if start >= 0 or n == size:
            line = body[start + 1:]
            return (line or None), torn
        n = min(size, n * 4)


class AuditLog:
    """A hash-chained audit trail in one file (and its rotated segments).

    ``record()`` is synchronous and cheap (a lock, a few syscalls, one SHA-256, one write and,
    under the default fsync policy, one ``fdatasync``). Call ``close()`` on shutdown: it writes
    a final checkpoint and flushes the exporter.
    """

    def __init__(self, path: str | os.PathLike, signing_key: Any = None, checkpoint_every: int = 1000,
                 exporter: Any = None, *, publisher: CheckpointPublisher | None = None,
                 fsync: FsyncPolicy | str = FsyncPolicy.ALWAYS, rotate_bytes: int | None = None,
                 actor: str = "system:spe-audit", clock: Callable[[], int] = time.time_ns):
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.checkpoint_every = checkpoint_every
        self.fsync = FsyncPolicy(fsync)
        self.rotate_bytes = rotate_bytes
        self.actor = actor
        self._signer = Signer(load_private_key(signing_key)) if signing_key is not None else None
        self._exporter = _as_exporter(exporter)
        self._publisher = publisher
        self._clock = clock
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._reset_process_state()

    # --- public ---------------------------------------------------------------------------

    @property
    def public_key(self):
        return self._signer.public_key if self._signer else None

    def record(self, actor: str, action: Act | str, target: str | None = None, permit: str | None = None,
               dataset: str | None = None, outcome: str = "success",
               details: Mapping[str, Any] | None = None) -> Record:
        """Append one record and return it (with its ``seq`` and ``hash``)."""
        if not isinstance(actor, str) or not actor:
            raise ValueError("actor must be a non-empty string (who did it, e.g. 'user:alice')")
        fields = {"actor": actor, "action": action_name(action), "target": _opt(target, "target"),
                  "permit": _opt(permit, "permit"), "dataset": _opt(dataset, "dataset"),
                  "outcome": outcome_name(outcome), "details": dict(details or {})}
        written, cp = self._append(fields)
        self._after(written, cp)
        return written[0]

    def checkpoint(self) -> Checkpoint | None:
        """Take a checkpoint of the current tail now (signed when there is a key) and publish it."""
        written, cp = self._append(None)
        self._after(written, cp)
        return cp

    def flush(self) -> None:
        """Push exported records out (OpenTelemetry batches)."""
        flush = getattr(self._exporter, "flush", None)
        if flush:
            flush()

    def close(self, checkpoint: bool = True) -> None:
        """Final checkpoint (unless ``checkpoint=False``: a one-shot writer such as
        ``spe-audit append``), flush, release files. Safe to call twice."""
        if self._closed:
            return
        try:
            if checkpoint and (self._fd is not None or self.path.exists()):
                self.checkpoint()
        finally:
            self._closed = True
            self.flush()
            shutdown = getattr(self._exporter, "shutdown", None)
            if shutdown:
                shutdown()
            with self._lock:
                self._close_fds()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the locked part ------------------------------------------------------------------

    def _append(self, fields: dict[str, Any] | None) -> tuple[list[Record], Checkpoint | None]:
        if self._closed:
            raise AuditError(f"audit log {self.path} is closed")
        if self._pid != os.getpid():
            self._reset_process_state()
        with self._lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                return self._append_locked(fields)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _append_locked(self, fields):
        fd, ino, size = self._open_active()
        seq, prev, last_action = self._tail(fd, ino, size)
        written: list[Record] = []
        cp: Checkpoint | None = None
        durable = self.fsync is FsyncPolicy.ALWAYS
        if fields is not None:
            try:
                rec = seal({**fields, "seq": seq + 1, "time": format_time(self._clock()), "prev": prev})
            except TypeError as e:
                raise ValueError(f"details must be plain JSON data: {e}") from None
            size = self._write(fd, rec.line, size)
            written.append(rec)
            seq, prev, last_action = rec.seq, rec.hash, rec.action
            if seq % self.checkpoint_every == 0 and rec.action != _CHECKPOINT:
                cp, size, more = self._checkpoint_locked(fd, size, seq, prev)
                written += more
                durable = durable or self.fsync is FsyncPolicy.CHECKPOINT
        elif seq > 0:  # an explicit checkpoint (also at close): skip if the tail already is one
            if last_action != _CHECKPOINT or self._signer is None:
                cp, size, more = self._checkpoint_locked(fd, size, seq, prev)
                written += more
            durable = durable or self.fsync is FsyncPolicy.CHECKPOINT
        if written:
            seq, prev, last_action = written[-1].seq, written[-1].hash, written[-1].action
        if durable and self.fsync is not FsyncPolicy.NEVER:
            os.fdatasync(fd)
        self._cache = (ino, size, seq, prev, last_action)
        if self.rotate_bytes and size >= self.rotate_bytes:
            more, rotated_cp = self._rotate_locked(fd, size, seq, prev, last_action)
            written += more
            cp = rotated_cp or cp
        return written, cp

    def _checkpoint_locked(self, fd: int, size: int, seq: int, digest: str):
        now = format_time(self._clock())
        if self._signer is None:
            return Checkpoint(seq, digest, now, log=self.path.name), size, []
        sig = self._signer.sign(seq, digest)
        cp = Checkpoint(seq, digest, now, sig, self._signer.key_id, self.path.name)
        rec = seal({"actor": self.actor, "action": _CHECKPOINT, "target": self.path.name,
                    "permit": None, "dataset": None, "outcome": "success",
                    "details": {"checkpoint": {"seq": seq, "hash": digest},
                                "keyId": self._signer.key_id, "signature": sig},
                    "seq": seq + 1, "time": now, "prev": digest})
        size = self._write(fd, rec.line, size)
        return cp, size, [rec]

    def _rotate_locked(self, fd: int, size: int, seq: int, prev: str, last_action: str):
        written: list[Record] = []
        cp = None
        if self._signer is not None and last_action != _CHECKPOINT:
            cp, size, written = self._checkpoint_locked(fd, size, seq, prev)
        if self.fsync is not FsyncPolicy.NEVER:
            os.fsync(fd)
        first = os.pread(fd, 4096, 0)
        nl = first.find(b"\n")
        try:
            first_seq = parse_line(first[:nl] if nl >= 0 else first)["seq"]
        except MalformedRecord:
            first_seq = seq  # a damaged head: name the segment by where it ends instead
        os.rename(self.path, segment_name(self.path, first_seq))
        if self.fsync is not FsyncPolicy.NEVER:
            self._fsync_dir()
        self._close_fds(keep_lock=True)
        self._cache = None
        return written, cp

    def _open_active(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self._fd is None or st is None or st.st_ino != self._ino:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            fst = os.fstat(self._fd)
            self._ino, size = fst.st_ino, fst.st_size
            if st is None and self.fsync is not FsyncPolicy.NEVER:
                self._fsync_dir()  # a new file: make its name durable too
        else:
            size = st.st_size
        return self._fd, self._ino, size

    def _fsync_dir(self) -> None:
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _tail(self, fd: int, ino: int, size: int) -> tuple[int, str, str]:
        c = self._cache
        if c is not None and c[0] == ino and c[1] == size:
            return c[2], c[3], c[4]
        if size == 0:
            segs = list_segments(self.path)
            if not segs:
                return 0, GENESIS_HASH, ""
            sfd = os.open(segs[-1], os.O_RDONLY | os.O_CLOEXEC)
            try:
                line, _ = _last_line(sfd, os.fstat(sfd).st_size)
            finally:
                os.close(sfd)
            where = segs[-1]
        else:
            line, torn = _last_line(fd, size)
            if torn:  # a crash mid-write: end the fragment so the next record starts a line
                log.warning("audit log %s ends in an unterminated line; closing it", self.path)
                os.write(fd, b"\n")
            where = self.path
        if line is None:
            return 0, GENESIS_HASH, ""
        try:
            rec = parse_line(line)
        except MalformedRecord as e:
            raise AuditError(f"cannot append to {where}: its last line is not a valid record ({e}); "
                             f"run 'spe-audit verify {where}'") from None
        return rec["seq"], rec["hash"], rec["action"]

    def _write(self, fd: int, line: bytes, size: int) -> int:
        data = line + b"\n"
        n = os.write(fd, data)
        if n != len(data):  # a short write on a regular file means the disk is full
            raise AuditError(f"short write to {self.path} ({n} of {len(data)} bytes)")
        return size + n

    # --- outside the lock -----------------------------------------------------------------

    def _after(self, written: list[Record], cp: Checkpoint | None) -> None:
        if self._exporter is not None:
            for rec in written:
                try:
                    self._exporter.export_record(rec)
                except Exception:  # export is best effort: the file is the record of truth
                    log.exception("exporting audit record seq %d failed", rec.seq)
        if cp is not None and self._publisher is not None:
            try:
                self._publisher.publish(cp)
            except Exception:
                log.exception("publishing audit checkpoint seq %d failed", cp.seq)

    def _reset_process_state(self) -> None:
        """Fresh descriptors and locks (at start and in a forked child: a flock shared with the
        parent through an inherited descriptor would not exclude it)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._ino: int | None = None
        self._cache: tuple | None = None
        self._closed = getattr(self, "_closed", False)

    def _close_fds(self, keep_lock: bool = False) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self._ino = None
        if not keep_lock and self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _opt(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{name} must be a string or None, not {type(value).__name__}")


def _as_exporter(exporter: Any) -> RecordExporter | None:
    if exporter is None or hasattr(exporter, "export_record"):
        return exporter
    # An OpenTelemetry LogRecordExporter (OTLP, in-memory): wrap it.
    from .telemetry import OTelAuditExporter
    return OTelAuditExporter.from_log_exporter(exporter)
