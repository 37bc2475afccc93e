"""The files of one request (or one resubmitted round) as they arrive: each streamed into the
encrypted quarantine, the permit's limits enforced byte by byte, nothing held whole in memory.

A :class:`Staging` is opened once the request is authorised (so the permit's limits are
known), written part by part by the HTTP layer's multipart reader (or from whole uploads by
the service), and either committed (its ``files`` become the request's round) or aborted
(every byte written is removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .quarantine import Quarantine, QuarantineWriter
from .records import Problem
from .store import PermitInfo

MAX_FILE_NAME = 1024          # OutputReview's spec.files[].name limit


def check_file_name(name: str, seen: set[str]) -> None:
    parts = name.split("/")
    if (not name or len(name) > MAX_FILE_NAME or "\x00" in name or name.startswith("/")
            or any(p in ("", ".", "..") for p in parts)):
        raise Problem(400, "bad_file_name", f"file name {name[:60]!r} must be a relative path "
                      "without '.' or '..' segments, e.g. results/table1.csv")
    if name in seen:
        raise Problem(400, "duplicate_file", f"{name} is sent twice")


@dataclass
class Staging:
    quarantine: Quarantine
    user: str
    namespace: str
    name: str                 # the request (OutputReview) these files belong to
    round: int
    permit: PermitInfo
    workspace: str
    new_request: bool         # abort removes the whole request's directory, else only this round
    files: list[dict] = field(default_factory=list)   # name, size, sha256 of the closed files
    _writer: QuarantineWriter | None = None
    _current: str = ""
    _seen: set[str] = field(default_factory=set)

    @property
    def max_file_bytes(self) -> int:
        return self.permit.policy.thresholds.max_file_bytes

    def open(self, filename: str) -> None:
        if self._writer is not None:
            self.close_file()
        pol = self.permit.policy
        if len(self.files) + 1 > pol.max_files:
            raise Problem(413, "too_many_files", f"more than {pol.max_files} files; permit {self.permit.name} "
                          f"allows {pol.max_files} per request")
        check_file_name(filename, self._seen)
        self._seen.add(filename)
        self._current = filename
        self._writer = self.quarantine.writer(self.namespace, self.name, self.round, len(self.files))

    def write(self, data: bytes) -> None:
        w = self._writer
        if w is None:
            raise Problem(400, "bad_upload", "file data outside a file part")
        if w.size + len(data) > self.max_file_bytes:
            raise Problem(413, "file_too_large", f"{self._current} is over {self.max_file_bytes} bytes; permit "
                          f"{self.permit.name} allows at most {self.max_file_bytes} bytes per file")
        w.write(data)

    def close_file(self) -> None:
        if self._writer is None:
            return
        digest, size = self._writer.close()
        self._writer = None
        self.files.append({"name": self._current, "size": size, "sha256": digest})

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        if self.new_request:
            self.quarantine.purge(self.namespace, self.name)
        else:
            self.quarantine.purge_round(self.namespace, self.name, self.round)
