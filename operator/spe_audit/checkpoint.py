"""Signed checkpoints: an Ed25519 signature over (seq, hash) of one record.

The signed message is ``b"spe-audit checkpoint v1\\n"`` followed by the canonical JSON of
``{"hash": <hex>, "seq": <int>}``. The key id is the first 16 hex digits of SHA-256 over the
raw 32-byte public key, so a verifier holding several keys knows which one to try.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .record import canonical

DOMAIN = b"spe-audit checkpoint v1\n"


def signed_message(seq: int, digest: str) -> bytes:
    return DOMAIN + canonical({"hash": digest, "seq": seq})


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """(seq, hash) of one record, optionally signed. ``time`` is when it was taken."""

    seq: int
    hash: str
    time: str = ""
    signature: str | None = None   # base64 of the 64-byte Ed25519 signature
    key_id: str | None = None
    log: str = ""                  # the log's file name, for people reading a ConfigMap

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time,
                "signature": self.signature, "keyId": self.key_id, "log": self.log}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Checkpoint":
        return cls(seq=int(d["seq"]), hash=str(d["hash"]), time=str(d.get("time") or ""),
                   signature=d.get("signature") or None, key_id=d.get("keyId") or None,
                   log=str(d.get("log") or ""))

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        """``SEQ:HASH`` as given on a command line."""
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"checkpoint {text!r} is not SEQ:HASH (a number, a colon, 64 hex digits)")
        return cls(seq=int(seq), hash=digest)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Checkpoint":
        """Read a checkpoint file: the JSON a publisher writes, or a ConfigMap from
        ``kubectl get configmap … -o yaml|json`` (its ``data.checkpoint.json``)."""
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
            doc = json.loads(doc["data"]["checkpoint.json"])
        if not isinstance(doc, dict) or "seq" not in doc or "hash" not in doc:
            raise ValueError(f"{path}: not a checkpoint (expected seq and hash)")
        return cls.from_dict(doc)


class Signer:
    """Signs checkpoints with one Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, seq: int, digest: str) -> str:
        return base64.b64encode(self._key.sign(signed_message(seq, digest))).decode("ascii")


class Verifier:
    """Checks checkpoint signatures against one or more trusted public keys."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]):
        self._keys = {key_id(k): k for k in public_keys}

    def __bool__(self) -> bool:
        return bool(self._keys)

    def check(self, seq: int, digest: str, signature: str | None, kid: str | None) -> str | None:
        """None when the signature is good, else why not."""
        if not signature:
            return "the checkpoint is not signed"
        key = self._keys.get(kid or "")
        if key is None:
            return f"signed with key {kid!r}, which is not among the trusted public keys"
        try:
            key.verify(base64.b64decode(signature, validate=True), signed_message(seq, digest))
        except (InvalidSignature, ValueError):
            return f"the signature does not verify with key {kid}"
        return None


def load_private_key(source: Ed25519PrivateKey | str | os.PathLike | bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from a key object, PEM bytes, or a PEM file path."""
    if isinstance(source, Ed25519PrivateKey):
        return source
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 private key")
    return key


def load_public_key(source: Ed25519PublicKey | str | os.PathLike | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, PEM bytes, or a PEM file path."""
    if isinstance(source, Ed25519PublicKey):
        return source
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 public key")
    return key


def generate_keypair(private_path: str | os.PathLike, public_path: str | os.PathLike) -> str:
    """Write a new key pair as PEM (the private key mode 0600); return its key id."""
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv)
    Path(public_path).write_bytes(pub)
    return key_id(key.public_key())
