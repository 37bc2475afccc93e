"""Signing the check record (SATRE 3.3.09): Ed25519 over canonical JSON.

Canonical JSON = ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` encoded as UTF-8. The signature covers the whole report except its own
``signature`` member, so any change to a finding, a verdict or the policy breaks it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_KEY = "signature"
ALGORITHM = "Ed25519"
CANONICALIZATION = "json-sorted-keys-compact-utf8"


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | bytes) -> str:
    raw = public_key if isinstance(public_key, bytes) else _raw_public(public_key)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_report(report: Mapping[str, Any], private_key: Ed25519PrivateKey | bytes) -> dict[str, Any]:
    """A copy of ``report`` with a ``signature`` member added (an existing one is replaced).
    ``private_key`` is an Ed25519 key object or its 32 raw bytes."""
    if isinstance(private_key, (bytes, bytearray)):
        private_key = Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    body = {k: v for k, v in report.items() if k != SIGNATURE_KEY}
    payload = canonical_json(body)
    public = _raw_public(private_key.public_key())
    return {**body, SIGNATURE_KEY: {
        "algorithm": ALGORITHM,
        "canonicalization": CANONICALIZATION,
        "key_id": key_id(public),
        "public_key": base64.b64encode(public).decode("ascii"),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "value": base64.b64encode(private_key.sign(payload)).decode("ascii"),
    }}


def _candidate_keys(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> list[Ed25519PublicKey]:
    if isinstance(key, Ed25519PublicKey):
        return [key]
    if isinstance(key, Ed25519PrivateKey):
        return [key.public_key()]
    raw = bytes(key)
    if len(raw) != 32:
        return []
    # 32 raw bytes: the public key, or the private seed the gateway signs with.
    out = []
    for load in (Ed25519PublicKey.from_public_bytes, lambda b: Ed25519PrivateKey.from_private_bytes(b).public_key()):
        try:
            out.append(load(raw))
        except ValueError:
            continue
    return out


def verify_report_signature(signed: Mapping[str, Any],
                            public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> bool:
    """True only if ``signed`` carries a valid Ed25519 signature by the caller's trusted key
    (never the key embedded in the record). The key may be given as an Ed25519 public or
    private key object, or as 32 raw bytes of either (a private seed is turned into its public
    key)."""
    sig = signed.get(SIGNATURE_KEY)
    if not isinstance(sig, Mapping) or sig.get("algorithm") != ALGORITHM:
        return False
    try:
        value = base64.b64decode(str(sig.get("value", "")), validate=True)
        payload = canonical_json({k: v for k, v in signed.items() if k != SIGNATURE_KEY})
        keys = _candidate_keys(public_key)
    except (ValueError, TypeError):
        return False
    for key in keys:
        try:
            key.verify(value, payload)
            return True
        except InvalidSignature:
            continue
    return False
