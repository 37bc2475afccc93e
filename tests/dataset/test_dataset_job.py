"""A Dataset on the real node: the operator creates the revision's claim (rancher's
local-path-provisioner), runs spe-ingest from the ingest image as a Job, and the Dataset's status
comes from what the Job reported; refusals, interruptions and hand-written status included."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from spe_api.datasetvolume import (ANNOTATION_MANIFEST_DIGEST, LABEL_STATE, PSEUDONYMS_KEY, PSEUDONYMS_NAMESPACE,
                                   dataset_claim_name, pseudonyms_secret_name)

from .conftest import DATASETS, LOCAL_PATH_DISK, OPERATOR_NS, wait_for
from spe_dev.fscrypt import on_disk
from spe_dev.sourcedata import SourceSpec

# Real ingest Jobs on the real node: their own waits (420-600 s) bound them, not the suite's 300 s.
pytestmark = [pytest.mark.dataset, pytest.mark.timeout(900)]


def test_dataset_becomes_ready_with_the_right_counts(dataset_env, cluster):
    env = dataset_env
    spec = SourceSpec(patients=6, per_patient=2, classes=2)
    planted = env.source_claim("src-ready", spec, path="/export")
    keys = env.keys("ready")
    t0 = time.monotonic()
    env.apply(env.dataset_body("ct-ready", "src-ready", keys, source={"claimName": "src-ready", "path": "/export"},
                               kAnonymity={"threshold": 3}))
    ds = env.wait_phase("ct-ready", ("Ready", "Failed", "Quarantined"))
    took = time.monotonic() - t0
    st = ds["status"]
    assert st["phase"] == "Ready", st
    counts = st["counts"]
    assert counts["patients"] == 6 and counts["studies"] == 6 and counts["series"] == 6
    assert counts["instances"] == 12 and counts["accepted"] == 12
    assert counts["rejected"] == 0 and counts["quarantined"] == 0
    assert st["efficiencyPercent"] == 100.0 and st["kAnonymity"] == 3
    assert st["manifestDigest"].startswith("sha256:")
    claim_name = dataset_claim_name("ct-ready", ds["metadata"]["generation"])
    assert st["claimName"] == claim_name and st["revision"] == ds["metadata"]["generation"]
    claim = env.claim(claim_name)
    assert claim["metadata"]["labels"][LABEL_STATE] == "ready"
    assert claim["metadata"]["annotations"][ANNOTATION_MANIFEST_DIGEST] == st["manifestDigest"]
    assert claim["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    assert st["volumeName"] == claim["spec"]["volumeName"]
    # The Job ran on the real node, from the ingest image, with no API token.
    pods = env.pods("ct-ready")
    assert pods and all(p["spec"]["nodeName"] == "spe-node-1" for p in pods)
    assert all(p["spec"]["automountServiceAccountToken"] is False for p in pods)
    # The data on the volume: de-identified, signed; no planted name anywhere in data/.
    pv = env.api.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    from pathlib import Path
    root = Path((pv["spec"].get("hostPath") or pv["spec"].get("local"))["path"])
    files = list((root / "data").rglob("*.dcm"))
    assert len(files) == 12
    blob = b"".join(f.read_bytes() for f in files)
    assert not any(name.split("^")[0].encode() in blob for name in planted)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["signature"]["algorithm"] == "Ed25519"
    # Encrypted at rest: the digest is in report.json as read through the mount, never on the disk;
    # a control file outside the encrypted directory is found there (the search works).
    marker = st["manifestDigest"].split(":")[1].encode()
    assert marker in (root / "report.json").read_bytes()
    disk = LOCAL_PATH_DISK[0]
    control = root.parents[1] / "control.txt"
    control.write_bytes(b"control-" + marker[::-1])
    assert on_disk(disk, b"control-" + marker[::-1])
    assert not on_disk(disk, marker)
    control.unlink()
    # The hashed pseudonyms, published for the gateway: one per patient.
    secret = env.api.get(f"/api/v1/namespaces/{PSEUDONYMS_NAMESPACE}/secrets/{pseudonyms_secret_name('ct-ready')}")
    import base64
    lines = base64.b64decode(secret["data"][PSEUDONYMS_KEY]).decode().splitlines()
    assert len(lines) == 6 and all(len(h) == 64 for h in lines) and lines == sorted(lines)
    # kubectl shows the phase and the counts.
    table = cluster.kubectl("get", "dataset", "ct-ready", check=True).stdout
    assert "Ready" in table and " 12 " in table, table
    print(f"12 files ingested as a Job in {took:.1f}s (apply → Ready)")


def test_k_below_threshold_fails_with_the_reason(dataset_env):
    env = dataset_env
    env.source_claim("src-k", SourceSpec(patients=6, per_patient=1, classes=2, lonely=True), uid_root=2)
    keys = env.keys("k")
    env.apply(env.dataset_body("ct-k", "src-k", keys, kAnonymity={"threshold": 3}))
    ds = env.wait_phase("ct-k", ("Ready", "Failed", "Quarantined"))
    st = ds["status"]
    assert st["phase"] == "Failed", st
    assert "k-anonymity 1 is below the threshold 3" in st["message"], st["message"]
    cond = next(c for c in st["conditions"] if c["type"] == "Ingested")
    assert cond["status"] == "False" and cond["reason"] == "KAnonymityBelowThreshold"
    assert st.get("claimName") is None and st.get("manifestDigest") is None
    claim = env.claim(dataset_claim_name("ct-k", ds["metadata"]["generation"]))
    assert claim["metadata"]["labels"][LABEL_STATE] == "failed"
    # Refused once, refused always: the Job is not retried.
    pods = env.pods("ct-k")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]


def test_hand_patched_status_is_corrected(dataset_env, cluster):
    env = dataset_env
    ds = env.wait_phase("ct-k", ("Failed",))
    forged = {"status": {"phase": "Ready", "claimName": "src-k", "volumeName": "pv-chosen-by-someone",
                         "manifestDigest": "sha256:" + "0" * 64, "counts": {"accepted": 999}}}
    env.api.call("PATCH", f"{DATASETS}/ct-k/status", forged, content_type="application/merge-patch+json")

    def corrected():
        st = (env.get("ct-k") or {}).get("status") or {}
        return st if st.get("phase") == "Failed" and "volumeName" not in st and "claimName" not in st \
            and "manifestDigest" not in st and (st.get("counts") or {}).get("accepted") != 999 else None
    st = wait_for("the forged status to be overwritten", corrected, timeout=60)
    assert st["message"] == ds["status"]["message"]


def _ingest_process(project: str) -> int | None:
    """Host pid of the ingest container's process for ``project`` (the real node's containers are
    processes of this machine), or None."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"spe-ingest") for a in argv) and b"run" in argv and project.encode() in argv:
            return int(entry.name)
    return None


def _journal_records(volume: Path) -> list[str]:
    journal = volume / ".spe-ingest" / "journal.jsonl"
    lines = journal.read_text().splitlines() if journal.is_file() else []
    return [line for line in lines[1:] if line.endswith("}")]   # the first line is the run's fingerprint


def test_interrupted_job_is_not_ready_then_completes_on_retry(dataset_env):
    """The ingest is killed mid-run, as a node losing the pod would: the Dataset stays Ingesting,
    the Job's next pod resumes the interrupted one's journal, and the Dataset ends Ready.

    600 files take well under a second to de-identify, far too short to catch by polling the API:
    the test finds the process on this machine, holds it with SIGSTOP and lets it run in 20 ms
    steps until its journal holds records, then kills it."""
    env = dataset_env
    spec = SourceSpec(patients=150, per_patient=4, classes=2)
    env.source_claim("src-int", spec, uid_root=3)
    keys = env.keys("int")
    env.apply(env.dataset_body("ct-int", "src-int", keys))
    try:
        pid = wait_for("the ingest process of ct-int on the node", lambda: _ingest_process("ct-int"),
                       timeout=300, interval=0.01)
    except (AssertionError, pytest.fail.Exception):  # say why: unscheduled, still provisioning, done already
        print(env.cluster.kubectl("get", "jobs,pods,pvc", "-n", OPERATOR_NS, "-o", "wide").stdout)
        print(env.cluster.kubectl("describe", "pods", "-n", OPERATOR_NS, "-l", "spe.ehds.io/dataset=ct-int").stdout)
        print(json.dumps((env.get("ct-int") or {}).get("status"), indent=1))
        raise
    os.kill(pid, signal.SIGSTOP)
    first = next(p["metadata"]["name"] for p in env.pods("ct-int"))   # the Job's only pod so far
    claim = env.claim(dataset_claim_name("ct-int", 1))
    pv = env.api.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    volume = Path((pv["spec"].get("hostPath") or pv["spec"].get("local"))["path"])
    deadline = time.monotonic() + 120
    while not (seen := _journal_records(volume)):
        assert time.monotonic() < deadline, "the held ingest wrote no journal record in 120 s of 20 ms steps"
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
        os.kill(pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGKILL)
    assert len(seen) < spec.files, "the ingest finished within one step: nothing was interrupted"
    written = {rec["path"]: (volume / rec["path"]).stat().st_mtime_ns
               for rec in map(json.loads, seen) if rec.get("path")}
    assert written, seen

    phases = []

    def done():
        s = (env.get("ct-int") or {}).get("status") or {}
        phases.append(s.get("phase"))
        return s if s.get("phase") in ("Ready", "Failed") else None
    st = wait_for("the retried ingest", done, timeout=600)
    assert st["phase"] == "Ready", st
    assert phases[0] == "Ingesting" and set(phases[:-1]) <= {"Ingesting"}, phases
    assert st["counts"]["accepted"] == spec.files and st["counts"]["patients"] == 150
    # Another pod finished it, on the interrupted one's journal: the records and files written
    # before the kill are kept as they were (not written again), and every input has one record.
    finished = [p for p in env.pods("ct-int") if p.get("status", {}).get("phase") == "Succeeded"]
    assert finished and all(p["metadata"]["name"] != first for p in finished)
    final = _journal_records(volume)
    assert set(seen) <= set(final)
    assert {path: (volume / path).stat().st_mtime_ns for path in written} == written
    inputs = [json.loads(line)["input"] for line in final]
    assert len(inputs) == len(set(inputs)) == spec.files


def test_spec_change_reingests_and_keeps_the_old_claim_while_a_workspace_mounts_it(dataset_env, cluster):
    env = dataset_env
    ds = env.wait_phase("ct-ready", ("Ready",))
    old_rev = ds["metadata"]["generation"]
    old_claim = dataset_claim_name("ct-ready", old_rev)
    # A running workspace pod of a permit namespace that mounts the dataset (on a kwok node).
    ns = f"spe-t-mount-{time.monotonic_ns() % 100000}"
    node = next(n["metadata"]["name"] for n in env.api.get("/api/v1/nodes")["items"]
                if n["metadata"]["name"] != "spe-node-1")
    env.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        env.api.create(f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "ws-0", "namespace": ns, "labels": {"spe.ehds.io/dataset": "ct-ready"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "notebook"}],
                     "tolerations": [{"operator": "Exists"}]}})
        wait_for("the workspace pod Running", lambda: (env.api.get_or_none(f"/api/v1/namespaces/{ns}/pods/ws-0")
                                                        or {}).get("status", {}).get("phase") == "Running", timeout=60)
        body = env.get("ct-ready")
        body["spec"]["kAnonymity"]["threshold"] = 2
        env.api.call("PUT", f"{DATASETS}/ct-ready", {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec")})
        new = env.wait_phase("ct-ready", ("Ready", "Failed"))
        assert new["status"]["phase"] == "Ready" and new["metadata"]["generation"] == old_rev + 1
        assert new["status"]["claimName"] == dataset_claim_name("ct-ready", old_rev + 1)
        time.sleep(3)  # a few reconciles: the old claim stays while the pod runs
        assert env.claim(old_claim) is not None
        env.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/ws-0?gracePeriodSeconds=0")
        wait_for("the old claim to go", lambda: (lambda c: c is None or c["metadata"].get("deletionTimestamp"))(
            env.claim(old_claim)), timeout=120)
        assert env.claim(new["status"]["claimName"])["metadata"]["labels"][LABEL_STATE] == "ready"
    finally:
        env.api.call("DELETE", f"/api/v1/namespaces/{ns}")
