"""The researcher API and spe-export against a real JupyterHub (tokens checked by the hub),
with the gateway over the in-memory store."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from spe_egress.release import CHECK_RECORD_NAME

from .conftest import MAX_FILE, NAMESPACE, RESEARCHER, WORKSPACE
from .helpers import NOTES_TXT, SAFE_CSV, approve_all, run_cli, zip_members

pytestmark = pytest.mark.egress


def _request_id(out: str) -> str:
    return out.split()[2].rstrip(":")


def test_export_goes_from_request_to_released_bundle(gateway, hub, tmp_path):
    token = hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table1.csv").write_bytes(SAFE_CSV)
    (tmp_path / "results" / "notes.txt").write_bytes(NOTES_TXT)
    code, out, err = run_cli(gateway, token, "request", str(tmp_path / "results"),
                             "--justification", "Aggregate counts for the paper's table 1.")
    assert code == 0, err
    assert "uploading" in err and "100.0%" in err  # progress on stderr
    rid = _request_id(out)
    obj = gateway.wait_phase(rid, {"AwaitingReview"})
    files = {f["name"]: f for f in obj["spec"]["files"]}
    assert set(files) == {"results/table1.csv", "results/notes.txt"}
    assert files["results/table1.csv"]["sha256"] == hashlib.sha256(SAFE_CSV).hexdigest()
    assert obj["status"]["checks"]["verdict"] in ("pass", "review")

    # nothing to download before approval
    code, _, err = run_cli(gateway, token, "download", rid, "-o", str(tmp_path / "early.zip"))
    assert code == 7 and "nothing is released" in err

    gateway.call(gateway.svc.vote("rev-ada", rid, approve_all(2)))
    assert gateway.wait_phase(rid, {"AwaitingReview"})  # one approval is not enough
    gateway.call(gateway.svc.vote("rev-bob", rid, approve_all(2)))
    gateway.wait_phase(rid, {"Approved"})

    code, out, err = run_cli(gateway, token, "status", rid)
    assert code == 0 and "Approved" in out and "spe-export download" in out
    bundle = tmp_path / "bundle.zip"
    code, out, err = run_cli(gateway, token, "download", rid, "-o", str(bundle))
    assert code == 0, err
    members = zip_members(bundle.read_bytes())
    assert members["table1.csv"] == SAFE_CSV and members["notes.txt"] == NOTES_TXT
    record = json.loads(members[CHECK_RECORD_NAME])
    assert record["request"] == f"{NAMESPACE}/{rid}"
    assert sorted(record["reviewers"]) == ["rev-ada", "rev-bob"]
    assert record["checkRecord"]["signature"]
    assert gateway.wait_phase(rid, {"Released"})["status"]["release"]["downloads"] == 1

    acts = [(e["action"], e["actor"]) for e in gateway.audit() if e.get("target") == f"{NAMESPACE}/{rid}"]
    assert ("export.requested", f"user:{RESEARCHER}") in acts
    assert ("export.checked", "system:spe-egress") in acts
    assert ("export.voted", "user:rev-ada") in acts and ("export.voted", "user:rev-bob") in acts
    assert any(a == "export.approved" for a, _ in acts)
    assert any(a == "export.released" for a, _ in acts)
    # the link is a bearer capability: the download is recorded as its bearer, for the requester
    (dl,) = [e for e in gateway.audit() if e["action"] == "export.downloaded"]
    assert dl["actor"] == "link:127.0.0.1" and dl["details"]["requester"] == RESEARCHER


def test_researcher_sees_no_votes_and_no_private_comments(gateway, hub, tmp_path):
    token = hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    code, out, err = run_cli(gateway, token, "request", str(f), "--justification", "Counts for the report.")
    rid = _request_id(out)
    gateway.wait_phase(rid, {"AwaitingReview"})
    gateway.call(gateway.svc.vote("rev-ada", rid, {0: {"vote": "changes", "comment": "round the ages",
                                                       "visibility": "public"}}))
    gateway.call(gateway.svc.vote("rev-bob", rid, {0: {"vote": "reject", "comment": "PRIVATE remark",
                                                       "visibility": "private"}}))
    gateway.wait_phase(rid, {"Returned"})
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"token {token}"}, trust_env=False) as http:
        view = http.get(f"/api/v1/requests/{rid}").json()
    text = json.dumps(view)
    assert view["phase"] == "Returned"
    assert view["comments"] == [{"round": 1, "file": 0, "vote": "changes", "comment": "round the ages"}]
    assert "PRIVATE" not in text and "rev-ada" not in text and "rev-bob" not in text

    # resubmit after Returned: a new round with new files, checked again
    f.write_bytes(SAFE_CSV.replace(b"130", b"140"))
    code, out, err = run_cli(gateway, token, "request", str(f), "--resubmit", rid,
                             "--justification", "Rounded as asked.")
    assert code == 0, err
    obj = gateway.wait_phase(rid, {"AwaitingReview"})
    assert obj["status"]["round"] == 2
    assert obj["status"]["files"][0]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert not gateway.svc.quarantine._dir(NAMESPACE, rid, 1).exists()  # the old round is purged
    # the researcher withdraws: Withdrawn, and the quarantined copy is purged
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"token {token}"}, trust_env=False) as http:
        r = http.post(f"/api/v1/requests/{rid}/withdraw")
        assert r.status_code == 200 and r.json()["phase"] == "Withdrawn"
        r = http.post(f"/api/v1/requests/{rid}/withdraw")
        assert r.status_code == 409 and r.json()["error"] == "illegal_transition"
    assert not gateway.svc.quarantine.exists(NAMESPACE, rid)


def test_refusals_are_clear_with_exit_codes(gateway, hub, tmp_path):
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    just = ("--justification", "Counts for the report.")
    # not a member of the permit
    code, _, err = run_cli(gateway, hub.server_token("mallory", NAMESPACE, WORKSPACE), "request", str(f), *just)
    assert code == 4 and "mallory is not a member of permit p1" in err
    # permit not active
    code, _, err = run_cli(gateway, hub.server_token(RESEARCHER, "spe-p-suspended", "ws2"), "request", str(f),
                           *just, workspace="ws2", namespace="spe-p-suspended")
    assert code == 4 and "Suspended, not Active" in err
    # over the size limit (refused before upload by the pre-flight)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (MAX_FILE + 1))
    code, _, err = run_cli(gateway, hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE), "request", str(big), *just)
    assert code == 5 and "allows at most" in err and "uploading" not in err
    # a token the hub does not know
    code, _, err = run_cli(gateway, "not-a-token", "request", str(f), *just)
    assert code == 3 and "JupyterHub does not accept" in err
    # no configuration
    code, _, err = run_cli(gateway, "", "status")
    assert code == 2 and "JUPYTERHUB_API_TOKEN" in err
    # no such workspace, no such request
    code, _, err = run_cli(gateway, hub.server_token(RESEARCHER, NAMESPACE, "nope"), "request", str(f), *just,
                           workspace="nope")
    assert code == 6
    code, _, err = run_cli(gateway, hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE), "status", "er-0000000000")
    assert code == 6
    # the size limit also holds on the API itself (a client that skips the pre-flight)
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"token {hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)}"},
                      trust_env=False) as http:
        r = http.post("/api/v1/requests", data={"workspace": WORKSPACE, "namespace": NAMESPACE,
                                                "justification": "Counts for the report."},
                      files=[("file", ("big.bin", big.read_bytes()))])
        assert r.status_code == 413 and r.json()["error"] == "file_too_large"
        r = http.post("/api/v1/requests", data={"workspace": WORKSPACE, "namespace": NAMESPACE,
                                                "justification": "Counts for the report."},
                      files=[("file", ("../../etc/x.csv", SAFE_CSV))])
        assert r.status_code == 400 and r.json()["error"] == "bad_file_name"
    denied = [e for e in gateway.audit() if e["action"] == "export.denied"]
    assert {e["details"]["code"] for e in denied} >= {"not_member", "permit_inactive", "file_too_large"}


def test_release_link_is_signed_and_time_limited(gateway, hub, tmp_path):
    token = hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    _, out, _ = run_cli(gateway, token, "request", str(f), "--justification", "Counts for the report.")
    rid = _request_id(out)
    gateway.wait_phase(rid, {"AwaitingReview"})
    for r in ("rev-ada", "rev-bob"):
        gateway.call(gateway.svc.vote(r, rid, approve_all(1)))
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"token {token}"}, trust_env=False) as http:
        url = http.get(f"/api/v1/requests/{rid}").json()["download"]["url"]
    assert url.startswith(gateway.url + f"/download/{NAMESPACE}/{rid}?")
    with httpx.Client(trust_env=False) as http:
        assert http.get(url.replace("sig=", "sig=0")).status_code == 403
        forged = url.replace("exp=", "exp=9")
        assert http.get(forged).status_code == 403
        r = http.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert http.get(url).status_code == 200  # Released: downloadable until the link expires
    # an expired link is refused (gateway clock moved past the expiry)
    real = gateway.svc.clock
    gateway.svc.clock = lambda: real() + 8 * 86400
    try:
        with httpx.Client(trust_env=False) as http:
            r = http.get(url)
            assert r.status_code == 403 and "expired" in r.json()["message"]
    finally:
        gateway.svc.clock = real
    downloads = [e for e in gateway.audit() if e["action"] == "export.downloaded"]
    assert len([e for e in downloads if e.get("outcome") == "success"]) == 2
    assert len([e for e in downloads if e.get("outcome") == "denied"]) >= 3
