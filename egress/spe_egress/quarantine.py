"""Quarantine storage: every uploaded file encrypted at rest with AES-256-GCM, written as it
arrives (an upload is never held whole in memory).

Layout under the gateway's volume: ``<root>/<namespace>/<review>/r<round>/<index>.bin``. A file
is ``MAGIC (5 bytes) || nonce prefix (7 bytes) || segments``: the plaintext is cut into
segments of ``SEGMENT_BYTES``, each sealed on its own (AES-256-GCM, 16-byte tag) with the
nonce ``prefix || segment counter (4 bytes) || last flag (1 byte)`` -- the "STREAM"
construction, so segments cannot be reordered, dropped or the file truncated unnoticed. The
associated data binds a blob to its place (namespace, review, round, index), so a blob moved
to another request fails to decrypt; the plaintext's SHA-256 is checked on every read against
the digest the review records. Writes go to a temporary name and are renamed, so a crash never
leaves half a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"SPEQ\x02"
PREFIX_BYTES = 7
SEGMENT_BYTES = 256 * 1024
TAG_BYTES = 16


class QuarantineError(Exception):
    pass


class Quarantine:
    def __init__(self, root: str | os.PathLike, key: bytes):
        if len(key) != 32:
            raise ValueError("the quarantine key must be 32 bytes (AES-256)")
        self.root = Path(root)
        self._aead = AESGCM(key)

    def _dir(self, namespace: str, review: str, round_: int) -> Path:
        for part in (namespace, review):
            if not part or "/" in part or part in (".", ".."):
                raise QuarantineError(f"bad path component {part!r}")
        return self.root / namespace / review / f"r{int(round_)}"

    @staticmethod
    def _aad(namespace: str, review: str, round_: int, index: int) -> bytes:
        return f"{namespace}/{review}/{int(round_)}/{int(index)}".encode()

    def writer(self, namespace: str, review: str, round_: int, index: int) -> "QuarantineWriter":
        """A writer that encrypts one file segment by segment as its bytes arrive."""
        d = self._dir(namespace, review, round_)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return QuarantineWriter(self._aead, d / f"{int(index)}.bin", self._aad(namespace, review, round_, index))

    def put(self, namespace: str, review: str, round_: int, index: int, data: bytes) -> str:
        """Encrypt and store one file; return its sha256 (hex) of the plaintext."""
        w = self.writer(namespace, review, round_, index)
        try:
            w.write(data)
            return w.close()[0]
        except BaseException:
            w.abort()
            raise

    def get(self, namespace: str, review: str, round_: int, index: int, sha256: str) -> bytes:
        """Decrypt one file and check it against its recorded digest."""
        path = self._dir(namespace, review, round_) / f"{index}.bin"
        where = f"quarantined file {index} of {namespace}/{review}"
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise QuarantineError(f"{where} is gone") from None
        aad = self._aad(namespace, review, round_, index)
        step = SEGMENT_BYTES + TAG_BYTES
        out = bytearray()
        with fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(len(MAGIC) + PREFIX_BYTES)
            if not head.startswith(MAGIC) or size < len(head) + TAG_BYTES:
                raise QuarantineError(f"{where} is not a quarantine blob")
            prefix = head[len(MAGIC):]
            n = (size - len(head) + step - 1) // step
            try:
                for i in range(n):  # segment by segment: the ciphertext is never held whole
                    out += self._aead.decrypt(_nonce(prefix, i, i == n - 1), fh.read(step), aad)
            except InvalidTag:
                raise QuarantineError(f"{where} failed authentication (tampered, truncated, moved or wrong key)"
                                      ) from None
        if hashlib.sha256(out).hexdigest() != sha256:
            raise QuarantineError(f"{where}: digest mismatch")
        return bytes(out)

    def exists(self, namespace: str, review: str) -> bool:
        return (self.root / namespace / review).exists()

    def purge(self, namespace: str, review: str) -> bool:
        """Remove every round of a request's files. Idempotent; True if something was removed."""
        d = self.root / namespace / review
        if not d.exists():
            return False
        shutil.rmtree(d)
        return True

    def purge_round(self, namespace: str, review: str, round_: int) -> None:
        d = self._dir(namespace, review, round_)
        if d.exists():
            shutil.rmtree(d)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class QuarantineWriter:
    """Encrypts one file into the quarantine as it is written; ``close`` makes it visible
    (returns ``(sha256, size)``), ``abort`` removes every trace."""

    def __init__(self, aead: AESGCM, final: Path, aad: bytes):
        self._aead, self._final, self._aad = aead, final, aad
        self._tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
        self._fh = open(self._tmp, "wb")
        self._prefix = os.urandom(PREFIX_BYTES)
        self._fh.write(MAGIC + self._prefix)
        self._buf = bytearray()
        self._counter = 0
        self._sha = hashlib.sha256()
        self.size = 0

    def _seal(self, data: bytes, last: bool) -> None:
        if self._counter >= 2 ** 32 - 1:
            raise QuarantineError("a quarantined file may not exceed 2^32 segments")
        self._fh.write(self._aead.encrypt(_nonce(self._prefix, self._counter, last), data, self._aad))
        self._counter += 1

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        self._buf += data
        while len(self._buf) > SEGMENT_BYTES:  # keep at least one byte back: the last segment is flagged
            self._seal(bytes(self._buf[:SEGMENT_BYTES]), False)
            del self._buf[:SEGMENT_BYTES]

    def close(self) -> tuple[str, int]:
        self._seal(bytes(self._buf), True)
        self._buf.clear()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self._final)
        return self._sha.hexdigest(), self.size

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)
