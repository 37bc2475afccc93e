"""Issue #13 item 8: an upload cannot exhaust the gateway. Files stream into the encrypted
quarantine and the permit's limit holds as bytes arrive, with or without Content-Length: a
chunked upload far over the limit is refused early and the gateway's memory stays bounded."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

import pytest

from .conftest import MAX_FILE, NAMESPACE, RESEARCHER, WORKSPACE

pytestmark = [pytest.mark.egress, pytest.mark.timeout(300)]

BOUNDARY = "spe-test-boundary-7f3a"
CHUNK = 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's resident memory (the gateway runs in it) while a block runs."""

    def __enter__(self):
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base


def _fields(**values: str) -> bytes:
    return b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in values.items())


def chunked_upload(url: str, token: str, file_bytes: int, name: str = "big.bin") -> tuple[int | None, bytes, int]:
    """POST a multipart request with Transfer-Encoding: chunked (no Content-Length), the file
    generated as it is sent. Returns (HTTP status or None, response bytes, bytes sent)."""
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=60)
    head = (f"POST /api/v1/requests HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: token {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    response = bytearray()

    def read():
        try:
            while True:
                b = sock.recv(65536)
                if not b:
                    return
                response.extend(b)
        except OSError:
            return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = 0

    def chunk(data: bytes) -> None:
        nonlocal sent
        sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        sent += len(data)
    try:
        sock.sendall(head)
        chunk(_fields(namespace=NAMESPACE, workspace=WORKSPACE, justification="Model weights, chunked."))
        chunk(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
              "Content-Type: application/octet-stream\r\n\r\n".encode())
        block = os.urandom(CHUNK)
        left = file_bytes
        while left > 0:
            n = min(left, CHUNK)
            chunk(block[:n])
            left -= n
            if response:  # the gateway answered early: stop sending
                break
        else:
            chunk(f"\r\n--{BOUNDARY}--\r\n".encode())
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the gateway refused and closed the connection while we were still sending
    reader.join(30)
    sock.close()
    status = None
    if response.startswith(b"HTTP/1.1 "):
        status = int(response[9:12])
    return status, bytes(response), sent


def test_a_chunked_upload_over_the_limit_is_refused_with_bounded_memory(gateway, hub):
    token = hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)
    chunked_upload(gateway.url, token, 64 * 1024, "warm.csv")  # warm up code paths and caches
    too_big = 8 * MAX_FILE  # 160 MiB against the permit's 20 MiB per file
    with PeakRss() as rss:
        status, body, sent = chunked_upload(gateway.url, token, too_big)
    print(f"\nchunked upload of {too_big / 2**20:.0f} MiB against a {MAX_FILE / 2**20:.0f} MiB limit: HTTP {status} "
          f"after {sent / 2**20:.1f} MiB sent; gateway RSS +{rss.growth / 2**20:.1f} MiB")
    assert status == 413, body[:500]
    assert b"file_too_large" in body
    assert sent < too_big / 2, f"the gateway read {sent} bytes before refusing"
    assert rss.growth < 48 * 1024 * 1024, f"the gateway's memory grew by {rss.growth / 2**20:.0f} MiB"
    denied = [e for e in gateway.audit() if e["action"] == "export.denied"
              and e["details"].get("code") == "file_too_large"]
    assert denied
    # nothing of the refused upload stays in quarantine
    qdir = gateway.svc.quarantine.root / NAMESPACE
    left = [p for p in qdir.rglob("*.bin")] if qdir.exists() else []
    warm = {f["sha256"] for o in gateway.call(gateway.store.list_reviews()) for f in o["spec"]["files"]}
    assert len(left) == len(warm)


def test_a_chunked_upload_within_the_limit_streams_to_quarantine(gateway, hub):
    token = hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)
    size = MAX_FILE - 1
    # the checks (which read a request's files into memory, one request at a time) wait until
    # the upload is measured
    gateway.call(gateway.svc.check_slots.acquire())
    try:
        with PeakRss() as rss:
            status, body, _ = chunked_upload(gateway.url, token, size)
    finally:
        gateway.server.loop.call_soon_threadsafe(gateway.svc.check_slots.release)
    print(f"\nchunked upload of {size / 2**20:.1f} MiB within the limit: HTTP {status}; "
          f"gateway RSS +{rss.growth / 2**20:.1f} MiB while it streamed")
    assert status == 201, body[:500]
    assert rss.growth < size / 2, f"the gateway's memory grew by {rss.growth / 2**20:.0f} MiB for a " \
                                  f"{size / 2**20:.0f} MiB upload"
    (obj,) = [o for o in gateway.call(gateway.store.list_reviews()) if o["spec"]["files"][0]["name"] == "big.bin"]
    assert obj["spec"]["files"][0]["size"] == size
    obj = gateway.wait_phase(obj["metadata"]["name"], {"AwaitingReview"})
    data = gateway.svc.quarantine.get(NAMESPACE, obj["metadata"]["name"], 1, 0, obj["spec"]["files"][0]["sha256"])
    assert len(data) == size


def test_the_request_limit_is_below_the_containers_memory():
    from pathlib import Path
    import yaml
    from spe_api.quantity import parse_quantity
    from spe_egress.cli import build_parser, settings_from_args
    docs = list(yaml.safe_load_all((Path(__file__).resolve().parents[2] / "manifests/base/egress.yaml").read_text()))
    dep = next(d for d in docs if d and d["kind"] == "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    memory = parse_quantity(c["resources"]["limits"]["memory"])
    args = list(c["args"][1:])
    i = args.index("--oidc-client-secret-file")
    del args[i:i + 2]  # a mounted file, not here
    settings = settings_from_args(build_parser().parse_args(["serve", *args]))
    assert settings.max_request_bytes * 2 < memory, (settings.max_request_bytes, memory)
