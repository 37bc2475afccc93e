"""The gateway's authoritative record of each request, on its own volume.

``<root>/<namespace>/<review>.json`` holds ``{"version": n, "state": {...}}``: phase, rounds,
every ballot with private comments, history, release. It used to be a Secret in the permit's
namespace, where the hub's role may write Secrets (so a compromised hub could approve an
export); the gateway's volume is written by the gateway alone (one replica, ReadWriteOnce),
and the service seals every state with a MAC besides (``service._seal``), so a record edited
or copied anywhere is refused.

``version`` gives the same optimistic concurrency the API server's resourceVersion gave: a
write names the version it read, and a different version on disk is a :class:`Conflict`.
Writes go to a temporary file that is fsynced and renamed.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

from .store import Conflict

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class RecordFiles:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._lock = threading.Lock()

    def path(self, namespace: str, name: str) -> Path:
        for part in (namespace, name):
            if not _NAME.match(part or ""):
                raise ValueError(f"{part!r} is not a Kubernetes name")
        return self.root / namespace / f"{name}.json"

    def read(self, namespace: str, name: str) -> tuple[dict | None, int]:
        try:
            doc = json.loads(self.path(namespace, name).read_text())
        except FileNotFoundError:
            return None, 0
        return doc.get("state") or {}, int(doc.get("version", 0))

    def write(self, namespace: str, name: str, state: dict, expect: int | None) -> int:
        """Write ``state``; ``expect`` is the version read (None: the record must not exist yet)."""
        p = self.path(namespace, name)
        with self._lock:
            _, current = self.read(namespace, name)
            if (expect is None and current) or (expect is not None and current != expect):
                raise Conflict(f"the record of {namespace}/{name} changed (version {current}, read {expect})")
            version = current + 1
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
            with open(tmp, "w") as fh:
                json.dump({"version": version, "state": state}, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
            return version

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            self.path(namespace, name).unlink(missing_ok=True)

    def locate(self, name: str) -> str | None:
        """The namespace of the request ``name`` (the record is the index), or None."""
        if not _NAME.match(name or ""):
            return None
        for d in sorted(self.root.glob("*")) if self.root.exists() else []:
            if (d / f"{name}.json").exists():
                return d.name
        return None

    def all(self) -> list[tuple[str, str, float]]:
        """Every record: (namespace, name, age in seconds)."""
        out = []
        now = time.time()
        for p in self.root.glob("*/*.json") if self.root.exists() else []:
            try:
                out.append((p.parent.name, p.stem, now - p.stat().st_mtime))
            except FileNotFoundError:
                continue
        return out
