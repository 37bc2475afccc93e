"""The gateway's domain logic over the in-memory store: votes, independence, retention,
revocation, purge — with a controllable clock, no servers."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from spe_egress.audit import Auditor
from spe_egress.quarantine import Quarantine
from spe_egress.records import Problem, Upload
from spe_egress.service import EgressService

from .conftest import NAMESPACE, PERMIT, RESEARCHER, WORKSPACE, memory_store
from .helpers import SAFE_CSV, approve_all

pytestmark = [pytest.mark.egress, pytest.mark.asyncio(loop_scope="session")]


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def svc(tmp_path):
    store = memory_store()
    clock = Clock()
    s = EgressService(store, Quarantine(tmp_path / "q", bytes(32)), Auditor(tmp_path / "audit.log"),
                      report_key=bytes(range(32)), link_key=b"k" * 32, ledger_dir=tmp_path / "ledger", clock=clock)
    s.clock_obj = clock
    return s


async def submitted(svc, user=RESEARCHER) -> str:
    obj = await svc.create_request(user, NAMESPACE, WORKSPACE, "Counts for the report.", [Upload("t.csv", SAFE_CSV)])
    await svc.drain()
    return obj["metadata"]["name"]


async def test_concurrent_votes_lose_nothing_and_decide_once(svc):
    svc.store.permits[PERMIT] = dataclasses.replace(
        svc.store.permits[PERMIT], policy=dataclasses.replace(svc.store.permits[PERMIT].policy, reviewers_required=3))
    rid = await submitted(svc)
    await asyncio.gather(*(svc.vote(r, rid, approve_all(1)) for r in ("a", "b", "c")))
    obj = await svc.store.find_review(rid)
    assert obj["status"]["phase"] == "Approved"
    assert sorted(d["reviewer"] for d in obj["status"]["decisions"]) == ["a", "b", "c"]
    assert [h["phase"] for h in obj["status"]["history"]].count("Approved") == 1
    with pytest.raises(Problem, match="not awaiting review"):
        await svc.vote("d", rid, approve_all(1))


async def test_one_vote_per_reviewer_and_never_ones_own(svc):
    rid = await submitted(svc)
    await svc.vote("a", rid, approve_all(1))
    with pytest.raises(Problem) as err:
        await svc.vote("a", rid, approve_all(1))
    assert err.value.code == "already_voted"
    with pytest.raises(Problem) as err:
        await svc.vote(RESEARCHER, rid, approve_all(1))
    assert err.value.code == "own_request"
    assert rid not in [o["metadata"]["name"] for o in await svc.queue(RESEARCHER)]
    assert rid in [o["metadata"]["name"] for o in await svc.queue("b")]
    # what b sees before voting: nothing of a's vote
    assert (await svc.for_reviewer("b", rid))["status"]["decisions"] == []


async def test_open_requests_expire_after_retention_and_are_purged(svc):
    rid = await submitted(svc)
    assert svc.quarantine.exists(NAMESPACE, rid)
    svc.clock_obj.t += 29 * 86400
    assert await svc.sweep() == []
    svc.clock_obj.t += 2 * 86400
    assert await svc.sweep() == [rid]
    obj = await svc.store.find_review(rid)
    assert obj["status"]["phase"] == "Expired"
    assert not svc.quarantine.exists(NAMESPACE, rid)
    acts = [e["action"] for e in svc.audit.entries()]
    assert "export.expired" in acts and "export.purged" in acts


async def test_revoked_permit_cancels_open_requests_and_refuses_new_ones(svc):
    rid = await submitted(svc)
    svc.store.permits[PERMIT] = dataclasses.replace(svc.store.permits[PERMIT], phase="Revoked")
    assert await svc.sweep() == [rid]
    assert (await svc.store.find_review(rid))["status"]["phase"] == "Cancelled"
    assert not svc.quarantine.exists(NAMESPACE, rid)
    with pytest.raises(Problem) as err:
        await svc.create_request(RESEARCHER, NAMESPACE, WORKSPACE, "Counts for the report.", [Upload("t.csv", SAFE_CSV)])
    assert err.value.code == "permit_inactive"


async def test_released_files_are_purged_once_the_link_expires(svc):
    rid = await submitted(svc)
    for r in ("a", "b"):
        await svc.vote(r, rid, approve_all(1))
    await svc.download(NAMESPACE, rid, 1, "127.0.0.1")
    await svc.sweep()
    assert svc.quarantine.exists(NAMESPACE, rid)
    svc.clock_obj.t += 8 * 86400
    await svc.sweep()
    assert not svc.quarantine.exists(NAMESPACE, rid)
    assert (await svc.store.find_review(rid))["status"]["phase"] == "Released"


async def test_a_crashing_check_blocks_instead_of_passing(svc, monkeypatch):
    from spe_egress import checks_adapter

    def boom(*a, **k):
        raise RuntimeError("engine bug")
    monkeypatch.setattr(checks_adapter, "run", boom)
    rid = await submitted(svc)
    obj = await svc.store.find_review(rid)
    assert obj["status"]["phase"] == "AwaitingReview"
    assert obj["status"]["checks"]["files"][0]["verdict"] == "block"
    with pytest.raises(Problem, match="blocked"):
        await svc.vote("a", rid, approve_all(1))
