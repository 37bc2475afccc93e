"""Leader election on a Lease: the pure rules, then two candidates against the API server (one
leads, the other waits; it takes over when the leader stops renewing, or at once when the
leader releases the Lease), and the health endpoint's answers for a follower and a leader."""

from __future__ import annotations

import asyncio
import datetime
import threading

import aiohttp
import pytest

from spe_kube import KubeClient, load_kubeconfig
from spe_operator.health import HealthState, serve
from spe_operator.leader import LEASE, LeaderElector, expired, taken_spec

pytestmark = pytest.mark.install

T0 = datetime.datetime(2026, 12, 2, 1, 0, 0, tzinfo=datetime.timezone.utc)


def test_a_lease_expires_after_its_duration_without_renewal():
    spec = {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2026-12-02T01:00:00.000000Z"}
    assert not expired(spec, T0 + datetime.timedelta(seconds=15))
    assert expired(spec, T0 + datetime.timedelta(seconds=16))
    assert expired({**spec, "holderIdentity": None}, T0)      # released
    assert expired({}, T0)


def test_taking_over_counts_a_transition():
    first = taken_spec({}, "a", 15, T0)
    assert first["holderIdentity"] == "a" and first["leaseTransitions"] == 0
    second = taken_spec(first, "b", 15, T0)
    assert second["holderIdentity"] == "b" and second["leaseTransitions"] == 1


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def test_two_candidates_one_leader_then_failover(cluster, namespace):
    async with KubeClient(load_kubeconfig(cluster.kubeconfig)) as kube:
        a = LeaderElector(kube, namespace, "spe-operator", "a", lease_seconds=3)
        b = LeaderElector(kube, namespace, "spe-operator", "b", lease_seconds=3)
        ready = threading.Event()
        ready.set()
        state_b = HealthState(ready_flag=ready, elector=b)
        runner = await serve(state_b, "127.0.0.1", 0)
        port = runner.addresses[0][1]
        try:
            await asyncio.wait_for(a.acquire(), 10)
            hold_a = asyncio.create_task(a.hold())
            waiting_b = asyncio.create_task(b.acquire())
            await asyncio.sleep(4)            # longer than the lease: a renews, b keeps waiting
            assert a.leading and not waiting_b.done()
            assert await _get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
            status, text = await _get(f"http://127.0.0.1:{port}/readyz")
            assert status == 503 and "follower" in text
            # a stops renewing (its process hangs or dies): b takes over after the lease runs out.
            hold_a.cancel()
            t0 = asyncio.get_running_loop().time()
            await asyncio.wait_for(waiting_b, 15)
            took = asyncio.get_running_loop().time() - t0
            assert b.leading and 0 < took < 3 + 2 * b.retry_seconds + 1, took
            lease = await kube.get(LEASE, "spe-operator", namespace)
            assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
            assert await _get(f"http://127.0.0.1:{port}/readyz") == (200, "leading\n")
            # a, back, finds itself replaced: its next renewal fails and it stops leading.
            a.leading = True
            await asyncio.wait_for(a.hold(), 10)
            assert not a.leading
            # b hands over on a clean stop: a candidate takes the Lease at once.
            await b.release()
            await asyncio.wait_for(a.acquire(), 3)
            assert a.leading
        finally:
            await runner.cleanup()
