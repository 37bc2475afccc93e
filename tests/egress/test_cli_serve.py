"""``spe-egress serve`` starts from its console script, serves on loopback, and stops."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from spe_dev.servers import free_port, stop, wait_http

pytestmark = pytest.mark.egress


def test_serve_starts_and_answers(tmp_path):
    secret = tmp_path / "key"
    secret.write_text(secrets.token_hex(32))
    port = free_port()
    exe = Path(sys.executable).parent / "spe-egress"
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(exe), "serve", "--store", "memory", "--port", str(port),
                                 "--data-dir", str(tmp_path / "data"), "--secret-file", str(secret)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30, proc=proc, log=log,
                  ok=lambda r: r.status_code == 200)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/requests", trust_env=False)
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
        r = httpx.get(f"http://127.0.0.1:{port}/review/", trust_env=False)
        assert r.status_code == 303 and r.headers["location"] == "/review/login"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    finally:
        stop(proc)


def test_serve_refuses_a_short_secret(tmp_path):
    (tmp_path / "key").write_bytes(b"short")
    exe = Path(sys.executable).parent / "spe-egress"
    r = subprocess.run([str(exe), "serve", "--store", "memory", "--data-dir", str(tmp_path / "d"),
                        "--secret-file", str(tmp_path / "key")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "at least 32 bytes" in r.stderr
