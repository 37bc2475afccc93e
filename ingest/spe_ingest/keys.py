"""Keyed pseudonyms, UIDs and date shifts (BLAKE2b, per project and site).

All derivations use one 32-byte domain key::

    root   = BLAKE2b-256(key file bytes, person="spe-ingest-root")
    domain = BLAKE2b-256(project NUL site, key=root)

so the same input, key, project and site give the same output on any run and
machine, and another key, project or site gives unrelated outputs.
"""
from __future__ import annotations

import base64
import datetime as dt
from hashlib import blake2b

MIN_KEY_BYTES = 32
DATE_SHIFT_DAYS = 3650  # shifts are drawn from [-N, -1] days, N <= 3650 (default 3650)


class KeyMaterialError(ValueError):
    pass


def domain_key(key_material: bytes, project: str, site: str) -> bytes:
    if len(key_material) < MIN_KEY_BYTES:
        raise KeyMaterialError(f"key file holds {len(key_material)} bytes; "
                        f"at least {MIN_KEY_BYTES} are needed")
    root = blake2b(key_material, digest_size=32, person=b"spe-ingest-root").digest()
    return blake2b(project.encode() + b"\x00" + site.encode(), key=root,
                   digest_size=32).digest()


class Keys:
    """Per-worker derivation helper with a small memo for repeated UIDs."""

    def __init__(self, dkey: bytes, max_shift_days: int = DATE_SHIFT_DAYS):
        if not 1 <= max_shift_days <= DATE_SHIFT_DAYS:
            raise ValueError(f"the date shift bound must be 1..{DATE_SHIFT_DAYS} days")
        self.dkey = dkey
        self.max_shift_days = max_shift_days
        self._uids: dict[bytes, bytes] = {}

    def digest(self, purpose: bytes, value: bytes, size: int) -> bytes:
        return blake2b(purpose + b"\x00" + value, key=self.dkey,
                       digest_size=size).digest()

    def pseudonym(self, purpose: bytes, value: bytes, length: int = 16) -> str:
        """Upper-case base32 (A-Z, 2-7), ``length`` <= 16 characters (80 bits)."""
        raw = self.digest(purpose, value, 10)
        return base64.b32encode(raw).decode()[:length]

    def uid(self, value: bytes) -> bytes:
        got = self._uids.get(value)
        if got is None:
            num = int.from_bytes(self.digest(b"uid", value, 16), "big")
            got = b"2.25." + str(num).encode()
            if len(self._uids) > 100_000:
                self._uids.clear()
            self._uids[value] = got
        return got

    def date_offset(self, patient_key: bytes) -> int:
        """Days to add to every date of this patient (negative, keeps intervals)."""
        num = int.from_bytes(self.digest(b"date-shift", patient_key, 8), "big")
        return -1 - num % self.max_shift_days

    def input_id(self, relpath: str) -> str:
        """Name for an input file in reports: keyed hash of its relative path."""
        return self.digest(b"input", relpath.encode("utf-8", "surrogateescape"), 12).hex()


def shift_da(value: str, days: int) -> str | None:
    try:
        d = dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        return None
    try:
        return (d + dt.timedelta(days=days)).strftime("%Y%m%d")
    except OverflowError:
        return None
