"""Quarantine storage: every uploaded file encrypted at rest with AES-256-GCM.

Layout under the gateway's volume: ``<root>/<namespace>/<review>/r<round>/<index>.bin``, each
file ``nonce (12 bytes) || ciphertext+tag``. The associated data binds a blob to its place
and digest, so a blob moved to another request or swapped for another file fails to decrypt.
Writes go to a temporary name and are renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


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
    def _aad(namespace: str, review: str, round_: int, index: int, sha256: str) -> bytes:
        return f"{namespace}/{review}/{round_}/{index}/{sha256}".encode()

    def put(self, namespace: str, review: str, round_: int, index: int, data: bytes) -> str:
        """Encrypt and store one file; return its sha256 (hex) of the plaintext."""
        digest = hashlib.sha256(data).hexdigest()
        d = self._dir(namespace, review, round_)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + self._aead.encrypt(nonce, data, self._aad(namespace, review, round_, index, digest))
        final = d / f"{index}.bin"
        tmp = d / f".{index}.bin.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return digest

    def get(self, namespace: str, review: str, round_: int, index: int, sha256: str) -> bytes:
        """Decrypt one file and check it against its recorded digest."""
        path = self._dir(namespace, review, round_) / f"{index}.bin"
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise QuarantineError(f"quarantined file {index} of {namespace}/{review} is gone") from None
        try:
            data = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                      self._aad(namespace, review, round_, index, sha256))
        except InvalidTag:
            raise QuarantineError(f"quarantined file {index} of {namespace}/{review} failed "
                                  "authentication (tampered, moved or wrong key)") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise QuarantineError(f"quarantined file {index} of {namespace}/{review}: digest mismatch")
        return data

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
