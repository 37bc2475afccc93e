"""The signed integrity manifest (``DST/manifest.json``) and its verification.

Layout::

    {"manifest": {...files, counts, profile...}, "signature": null | {
        "algorithm": "Ed25519", "public_key": "<base64 raw 32 bytes>",
        "value": "<base64 signature over the canonical JSON of 'manifest'>"}}

The canonical form is ``json.dumps(manifest, sort_keys=True,
separators=(",", ":"), ensure_ascii=True)`` encoded as UTF-8.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

MANIFEST = "manifest.json"
AREAS = ("data", "quarantine")


class KeyFileError(ValueError):
    pass


def canonical(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def digest(manifest: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical(manifest)).hexdigest()


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or a file of exactly 32 raw seed bytes."""
    data = Path(path).read_bytes()
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM private key or 32 raw bytes ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) Ed25519 public key, or 32 raw bytes."""
    data = Path(path).read_bytes()
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM public key or 32 raw bytes ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(manifest: dict, key: Ed25519PrivateKey | None) -> dict:
    if key is None:
        return {"manifest": manifest, "signature": None}
    return {"manifest": manifest, "signature": {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(_raw_public(key.public_key())).decode(),
        "value": base64.b64encode(key.sign(canonical(manifest))).decode(),
    }}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(dst: Path, public_key: Ed25519PublicKey | None) -> list[str]:
    """Return a list of problems (empty when DST is intact)."""
    problems: list[str] = []
    try:
        doc = json.loads((dst / MANIFEST).read_text())
        manifest = doc["manifest"]
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"manifest unreadable: {exc}"]
    sig = doc.get("signature")
    if sig:
        try:
            embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig["public_key"]))
            key = public_key or embedded
            if public_key is not None and _raw_public(public_key) != _raw_public(embedded):
                problems.append("signature made with another key than --public-key")
            key.verify(base64.b64decode(sig["value"]), canonical(manifest))
        except InvalidSignature:
            problems.append("bad signature")
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"malformed signature: {exc}")
    elif public_key is not None:
        problems.append("manifest is not signed but --public-key was given")
    listed = set()
    for entry in files:
        rel = entry["path"]
        listed.add(rel)
        path = dst / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
            continue
        if path.stat().st_size != entry["size"]:
            problems.append(f"size differs: {rel}")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"content differs: {rel}")
    for area in AREAS:
        root = dst / area
        if not root.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                rel = str(Path(dirpath, name).relative_to(dst))
                if rel not in listed:
                    problems.append(f"not in manifest: {rel}")
    return problems
