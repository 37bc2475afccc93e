"""Holes found by reading the gateway as an attacker would (issue #13), each with the test that
showed it: forged approvals (1), interrupted work (9), audit that could be skipped (10) and
reviewer scope (11). The store is the in-memory one; the control-plane side is in
``test_kube_security.py``, the upload limits in ``test_upload_limits.py``."""

from __future__ import annotations

import dataclasses

import pytest

from spe_egress.audit import Auditor
from spe_egress.quarantine import Quarantine
from spe_egress.records import Problem, Upload
from spe_egress.service import EgressService
from spe_egress.store import MemoryStore

from .conftest import NAMESPACE, PERMIT, RESEARCHER, WORKSPACE, memory_store
from .helpers import SAFE_CSV, approve_all

pytestmark = [pytest.mark.egress, pytest.mark.asyncio(loop_scope="session")]


def make_svc(tmp_path, store=None, clock=None) -> EgressService:
    return EgressService(store or memory_store(), Quarantine(tmp_path / "q", bytes(32)), Auditor(tmp_path / "audit.log"),
                         report_key=bytes(range(32)), link_key=b"k" * 32, ledger_dir=tmp_path / "ledger",
                         **({"clock": clock} if clock else {}))


@pytest.fixture
def svc(tmp_path):
    return make_svc(tmp_path)


async def submitted(svc, user=RESEARCHER) -> str:
    obj = await svc.create_request(user, NAMESPACE, WORKSPACE, "Counts for the report.", [Upload("t.csv", SAFE_CSV)])
    await svc.drain()
    return obj["metadata"]["name"]


# --- 1: forged approvals -----------------------------------------------------------------------

async def test_forged_approval_signs_no_link_and_is_audited(svc):
    rid = await submitted(svc)
    # whoever can write where the record is kept patches it to Approved, with a release
    rec = svc.store.reviews[(NAMESPACE, rid)]
    rec["status"]["phase"] = "Approved"
    rec["status"]["decidedRounds"] = [1]
    rec["status"]["release"] = {"round": 1, "approvedFiles": [0], "expires": int(svc.clock()) + 3600,
                                "expiresAt": "2099-01-01T00:00:00Z", "downloads": 0}
    with pytest.raises(Problem) as err:
        await svc.get_own(RESEARCHER, rid)
    assert err.value.code == "record_tampered"
    with pytest.raises(Problem) as err:
        await svc.download(NAMESPACE, rid, 1, "127.0.0.1")
    assert err.value.code == "record_tampered"
    assert svc.download_path(rec | {"metadata": {"namespace": NAMESPACE, "name": rid}}) is None
    assert rid not in [o["metadata"]["name"] for o in await svc.list_own(RESEARCHER)]
    tampered = [e for e in svc.audit.entries() if e["action"] == "export.tampered"]
    assert tampered and tampered[0]["outcome"] == "denied" and tampered[0]["target"] == f"{NAMESPACE}/{rid}"


async def test_a_record_moved_to_another_request_is_refused(svc):
    a, b = await submitted(svc), await submitted(svc)
    for r in ("rev-ada", "rev-bob"):
        await svc.vote(r, a, approve_all(1))
    # copy the approved (authentic) record of a onto b
    svc.store.reviews[(NAMESPACE, b)]["status"] = dict(svc.store.reviews[(NAMESPACE, a)]["status"])
    with pytest.raises(Problem) as err:
        await svc.download(NAMESPACE, b, 1, "127.0.0.1")
    assert err.value.code == "record_tampered"


# --- 9: interrupted work -----------------------------------------------------------------------

class FailingStatusStore(MemoryStore):
    """A store whose write of a request's first record fails (API server gone, quota, ...)."""

    async def create_review(self, obj):
        if (obj.get("status") or {}).get("phase") == "Submitted":
            raise RuntimeError("the API server went away")
        return await super().create_review(obj)

    async def replace_status(self, obj):
        if obj["status"].get("phase") == "Submitted":
            raise RuntimeError("the API server went away")
        return await super().replace_status(obj)


async def test_a_failed_create_leaves_no_review_and_no_files(tmp_path):
    base = memory_store()
    store = FailingStatusStore()
    store.permits, store.workspaces = base.permits, base.workspaces
    svc = make_svc(tmp_path, store)
    with pytest.raises(Exception):
        await svc.create_request(RESEARCHER, NAMESPACE, WORKSPACE, "Counts for the report.",
                                 [Upload("t.csv", SAFE_CSV)])
    assert store.reviews == {}
    assert not (tmp_path / "q" / NAMESPACE).exists() or not any((tmp_path / "q" / NAMESPACE).iterdir())


async def test_interrupted_checks_resume_on_start(tmp_path, monkeypatch):
    store = memory_store()
    first = make_svc(tmp_path, store)
    monkeypatch.setattr(first, "_spawn", lambda coro: coro.close())  # the gateway dies before checking
    waiting = (await first.create_request(RESEARCHER, NAMESPACE, WORKSPACE, "Counts for the report.",
                                          [Upload("t.csv", SAFE_CSV)]))["metadata"]["name"]
    checking = (await first.create_request(RESEARCHER, NAMESPACE, WORKSPACE, "Counts for the report.",
                                           [Upload("t.csv", SAFE_CSV)]))["metadata"]["name"]
    from spe_egress.lifecycle import Phase
    from spe_egress.records import move
    await first._update(NAMESPACE, checking, lambda o: move(o, Phase.CHECKING, first.clock(), "system:spe-egress", "x"))
    # a new gateway process on the same store and volume
    second = make_svc(tmp_path, store)
    resumed = await second.resume()
    await second.drain()
    assert sorted(resumed) == sorted([waiting, checking])
    for rid in (waiting, checking):
        assert (await store.find_review(rid))["status"]["phase"] == "AwaitingReview"


# --- 10: audit that could be skipped ----------------------------------------------------------

class BrokenAuditor(Auditor):
    def __init__(self, path, fail_on: set[str]):
        super().__init__(path)
        self.fail_on = fail_on

    def record(self, actor, action, target, **kw):
        if action in self.fail_on:
            raise OSError("audit volume full")
        return super().record(actor, action, target, **kw)


async def test_a_download_that_cannot_be_audited_does_not_happen(svc, tmp_path):
    rid = await submitted(svc)
    for r in ("rev-ada", "rev-bob"):
        await svc.vote(r, rid, approve_all(1))
    svc.audit = BrokenAuditor(tmp_path / "audit2.log", {"export.downloaded"})
    with pytest.raises(Problem) as err:
        await svc.download(NAMESPACE, rid, 1, "127.0.0.1")
    assert err.value.status == 503 and err.value.code == "audit_unavailable"
    st = (await svc.store.find_review(rid))["status"]
    assert st["phase"] == "Approved" and st["release"]["downloads"] == 0  # nothing happened


async def test_a_vote_that_cannot_be_audited_is_not_counted(svc, tmp_path):
    rid = await submitted(svc)
    await svc.vote("rev-ada", rid, approve_all(1))
    svc.audit = BrokenAuditor(tmp_path / "audit2.log", {"export.voted", "export.approved"})
    with pytest.raises(Problem) as err:
        await svc.vote("rev-bob", rid, approve_all(1))
    assert err.value.code == "audit_unavailable"
    st = (await svc.store.find_review(rid))["status"]
    assert st["phase"] == "AwaitingReview" and [d["reviewer"] for d in st["decisions"]] == ["rev-ada"]


async def test_a_reviewer_viewing_a_file_is_audited(svc, tmp_path):
    rid = await submitted(svc)
    name, data = await svc.reviewer_file("rev-bob", rid, 0)
    assert data == SAFE_CSV
    views = [e for e in svc.audit.entries() if e["action"] == "export.viewed"]
    assert views and views[0]["actor"] == "user:rev-bob" and views[0]["details"]["file"] == "t.csv"
    svc.audit = BrokenAuditor(tmp_path / "audit2.log", {"export.viewed"})
    with pytest.raises(Problem) as err:
        await svc.reviewer_file("rev-bob", rid, 0)
    assert err.value.code == "audit_unavailable"


async def test_a_bearer_link_download_is_recorded_as_the_bearer(svc):
    rid = await submitted(svc)
    for r in ("rev-ada", "rev-bob"):
        await svc.vote(r, rid, approve_all(1))
    await svc.download(NAMESPACE, rid, 1, "198.18.0.7")
    (rec,) = [e for e in svc.audit.entries() if e["action"] == "export.downloaded"]
    assert rec["actor"] == "link:198.18.0.7"
    assert rec["details"]["requester"] == RESEARCHER and rec["details"]["client"] == "198.18.0.7"


# --- 11: reviewer scope ------------------------------------------------------------------------

def with_reviewers(svc, permit: str, reviewers: set[str], members: set[str] | None = None) -> None:
    p = svc.store.permits[permit]
    kw = {"reviewers": frozenset(reviewers)}
    if members is not None:
        kw["members"] = frozenset(members)
    svc.store.permits[permit] = dataclasses.replace(p, **kw)


async def test_a_co_member_of_the_permit_never_reviews_its_exports(svc):
    with_reviewers(svc, PERMIT, {"rev-ada", "rev-bob", "carla"}, members={RESEARCHER, "carla"})
    rid = await submitted(svc)
    assert rid not in [o["metadata"]["name"] for o in await svc.queue("carla")]
    with pytest.raises(Problem) as err:
        await svc.for_reviewer("carla", rid)
    assert err.value.code == "member_of_permit"
    with pytest.raises(Problem):
        await svc.vote("carla", rid, approve_all(1))
    with pytest.raises(Problem):
        await svc.reviewer_file("carla", rid, 0)


async def test_reviewers_see_only_the_permits_that_name_them(svc):
    with_reviewers(svc, PERMIT, {"rev-ada", "rev-bob"})
    rid = await submitted(svc)
    assert rid in [o["metadata"]["name"] for o in await svc.queue("rev-ada")]
    assert rid not in [o["metadata"]["name"] for o in await svc.queue("rev-zed")]
    with pytest.raises(Problem) as err:
        await svc.for_reviewer("rev-zed", rid)
    assert err.value.code == "not_reviewer_of_permit"
    with pytest.raises(Problem):
        await svc.vote("rev-zed", rid, approve_all(1))


async def test_identity_is_compared_on_one_subject(svc):
    """The hub's user name and the reviewer's login name are the same subject however they are
    cased: Rita logging in as 'RITA' is still the requester."""
    with_reviewers(svc, PERMIT, {"rev-ada", "rev-bob", "RITA"}, members={RESEARCHER})
    rid = await submitted(svc)
    with pytest.raises(Problem) as err:
        await svc.vote("RITA", rid, approve_all(1))
    assert err.value.code in ("own_request", "member_of_permit")
    await svc.vote("rev-ada", rid, approve_all(1))
    with pytest.raises(Problem) as err:
        await svc.vote("Rev-Ada", rid, approve_all(1))  # one vote per person, not per spelling
    assert err.value.code == "already_voted"


async def test_an_export_policy_names_its_reviewers():
    """The permit says who may review (the API server refuses members: test_kube_security)."""
    from pathlib import Path

    import yaml

    from spe_api import DataPermit
    from spe_egress.kube_store import permit_from_manifest
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "datapermit.yaml").read_text())
    doc["spec"]["exportPolicy"]["reviewers"] = ["rev-ada", "rev-bob"]
    assert DataPermit.from_manifest(doc).spec.export_policy.reviewers == ["rev-ada", "rev-bob"]
    info = permit_from_manifest(doc)
    assert info.names_reviewer("Rev-Ada") and not info.names_reviewer("rita")
    member = doc["spec"]["members"][0]["subject"]
    assert info.names(member.upper())
