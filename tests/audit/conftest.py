"""Fixtures for the audit-trail tests: keys, a log in a temporary directory, line surgery."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from spe_audit import AuditLog, FsyncPolicy

from audit_helpers import fill


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def key_files(tmp_path, key):
    priv = tmp_path / "signing.pem"
    pub = tmp_path / "signing.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


@pytest.fixture
def make_log(tmp_path):
    """make_log(n, **kwargs) -> (path, AuditLog) with n records, fsync off for speed."""
    opened = []

    def _make(n: int = 10, name: str = "audit.jsonl", **kwargs) -> tuple[Path, AuditLog]:
        kwargs.setdefault("fsync", FsyncPolicy.NEVER)
        path = tmp_path / name
        log = AuditLog(path, **kwargs)
        opened.append(log)
        fill(log, n)
        return path, log

    yield _make
    for log in opened:
        log.close(checkpoint=False)
