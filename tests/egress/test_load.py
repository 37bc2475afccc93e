"""Load: 50 concurrent 10 MB uploads through the real hub-token check — no error, no lost
or corrupted file (every digest compared, on the OutputReview and in quarantine)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import httpx
import pytest

from .conftest import NAMESPACE, RESEARCHER, WORKSPACE

pytestmark = [pytest.mark.egress, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session"),
              pytest.mark.timeout(600)]

UPLOADS = 50
SIZE = 10 * 1024 * 1024


async def test_fifty_concurrent_ten_megabyte_uploads(gateway, hub):
    token = hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)
    payloads = [os.urandom(SIZE) for _ in range(UPLOADS)]
    digests = [hashlib.sha256(p).hexdigest() for p in payloads]
    limits = httpx.Limits(max_connections=UPLOADS, max_keepalive_connections=UPLOADS)
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"token {token}"},
                                 limits=limits, timeout=300, trust_env=False) as http:
        async def one(i: int) -> httpx.Response:
            return await http.post("/api/v1/requests", data={
                "workspace": WORKSPACE, "namespace": NAMESPACE,
                "justification": f"Load test upload number {i}."}, files=[("file", (f"blob-{i}.bin", payloads[i]))])
        t0 = time.monotonic()
        responses = await asyncio.gather(*(one(i) for i in range(UPLOADS)))
        elapsed = time.monotonic() - t0
    errors = [(r.status_code, r.text[:200]) for r in responses if r.status_code != 201]
    assert not errors, errors
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == UPLOADS
    for i, rid in enumerate(ids):
        assert responses[i].json()["files"][0]["sha256"] == digests[i]
    # every request reaches review, and every quarantined copy decrypts to the bytes sent
    deadline = time.monotonic() + 240
    for i, rid in enumerate(ids):
        obj = await asyncio.to_thread(gateway.wait_phase, rid, {"AwaitingReview"}, max(1.0, deadline - time.monotonic()))
        f = obj["spec"]["files"][0]
        assert (f["name"], f["size"], f["sha256"]) == (f"blob-{i}.bin", SIZE, digests[i])
        data = gateway.svc.quarantine.get(NAMESPACE, rid, 1, 0, f["sha256"])
        assert hashlib.sha256(data).hexdigest() == digests[i]
    mb = UPLOADS * SIZE / 1e6
    print(f"\n{UPLOADS} concurrent uploads of {SIZE // (1024 * 1024)} MiB: {elapsed:.1f} s, "
          f"{mb / elapsed:.0f} MB/s, all {UPLOADS} digests match")
    assert len([e for e in gateway.audit() if e["action"] == "export.requested"]) == UPLOADS
