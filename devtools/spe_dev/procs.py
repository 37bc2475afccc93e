"""Background processes that spe-dev starts, tracked by pid files.

A pid file records the pid, the exact argv and the kernel's start time of the process, so a
recycled pid is never mistaken for ours: before signalling anything we check that
/proc/<pid>/cmdline is still our argv and /proc/<pid>/stat still has our start time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (comm) is parenthesised and may contain spaces; split after its closing paren.
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat(5)


def is_zombie_or_gone(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


@dataclass(frozen=True)
class Record:
    name: str
    pid: int
    argv: list[str]
    started: int | None

    def alive(self) -> bool:
        """True when the pid is still this very process (same argv, same start time)."""
        if is_zombie_or_gone(self.pid):
            return False
        return cmdline(self.pid) == self.argv and start_time(self.pid) == self.started


class ProcessTable:
    """The pid files of one spe-dev home."""

    def __init__(self, run_dir: Path, log_dir: Path):
        self.run_dir = run_dir
        self.log_dir = log_dir

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def get(self, name: str) -> Record | None:
        try:
            data = json.loads(self._pidfile(name).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return Record(name=name, pid=data["pid"], argv=data["argv"], started=data.get("started"))

    def running(self, name: str) -> Record | None:
        rec = self.get(name)
        return rec if rec is not None and rec.alive() else None

    def records(self) -> list[Record]:
        if not self.run_dir.is_dir():
            return []
        out = []
        for path in sorted(self.run_dir.glob("*.json")):
            rec = self.get(path.stem)
            if rec is not None:
                out.append(rec)
        return out

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None, preexec_fn=None) -> Record:
        """Start ``argv`` detached (own session, stdin closed, output to the log file);
        ``preexec_fn`` runs in the child before exec (e.g. to enter a network namespace)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(name), "ab")
        try:
            log.write(f"\n===== spe-dev: starting {name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=env, cwd=cwd, close_fds=True, preexec_fn=preexec_fn,
            )
        finally:
            log.close()
        started = None
        # The kernel fills /proc/<pid>/stat at fork; the argv switches at exec, which follows
        # within milliseconds. Wait for the exec so the recorded cmdline is the real one.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if cmdline(proc.pid) == argv:
                started = start_time(proc.pid)
                break
            time.sleep(0.01)
        rec = Record(name=name, pid=proc.pid, argv=argv, started=started)
        tmp = self._pidfile(name).with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": rec.pid, "argv": rec.argv, "started": rec.started}))
        tmp.replace(self._pidfile(name))
        # Forget the Popen object without waiting: the process outlives this CLI. Python would
        # warn about a running child on interpreter exit otherwise.
        proc.returncode = 0
        return rec

    def stop(self, name: str, timeout: float = 20.0) -> bool:
        """Stop our process ``name`` (TERM, then KILL after ``timeout``); True if one was stopped."""
        rec = self.get(name)
        stopped = False
        if rec is not None and rec.alive():
            os.kill(rec.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and rec.alive():
                time.sleep(0.05)
            if rec.alive():
                os.kill(rec.pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and rec.alive():
                    time.sleep(0.05)
            _reap(rec.pid)
            stopped = True
        self._pidfile(name).unlink(missing_ok=True)
        return stopped


def _reap(pid: int) -> None:
    """Collect the exit status when the process was our own child (e.g. started in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def processes_mentioning(text: str) -> list[tuple[int, list[str]]]:
    """Every live process whose command line mentions ``text`` (e.g. a state directory)."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        argv = cmdline(pid)
        if argv and any(text in a for a in argv) and not is_zombie_or_gone(pid):
            found.append((pid, argv))
    return found
