"""The gateway's keys, all derived (HKDF-SHA256) from one 32+-byte master secret.

The master secret comes from a Kubernetes Secret mounted as a file (``--secret-file``).
Separate derived keys keep each use apart: quarantine encryption (AES-256-GCM), release
links (HMAC-SHA256), the signature of check records, the reviewer-session cookie, and the MAC
(HMAC-SHA256) that seals each review's record.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_BYTES = 32


def _derive(master: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"spe-egress/v1",
                info=label.encode()).derive(master)


@dataclass(frozen=True)
class GatewayKeys:
    quarantine: bytes
    links: bytes
    reports: bytes
    sessions: bytes
    records: bytes

    @classmethod
    def from_secret(cls, master: bytes) -> "GatewayKeys":
        if len(master) < MIN_SECRET_BYTES:
            raise ValueError(f"the gateway secret must hold at least {MIN_SECRET_BYTES} bytes "
                             f"(it has {len(master)})")
        return cls(quarantine=_derive(master, "quarantine-aes-256-gcm"),
                   links=_derive(master, "release-links-hmac"),
                   reports=_derive(master, "check-record-signature"),
                   sessions=_derive(master, "reviewer-sessions"),
                   records=_derive(master, "review-record-mac"))


def read_secret_file(path: str | os.PathLike) -> bytes:
    """Read the master secret: raw bytes, or base64/hex text as a Secret's key often is."""
    raw = Path(path).read_bytes()
    text = raw.strip()
    for decode in (lambda t: bytes.fromhex(t.decode()), base64.b64decode):
        try:
            if text and all(32 < c < 127 for c in text):
                value = decode(text)
                if len(value) >= MIN_SECRET_BYTES:
                    return value
        except Exception:  # noqa: BLE001 - try the next encoding
            continue
    return raw
