"""The writer: record format, canonical hashing, API checks, checkpoints, rotation, default log."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

import spe_audit
from spe_audit import Act, AuditLog, AuditSettings, FsyncPolicy, Outcome, verify
from spe_audit.record import GENESIS_HASH, canonical

from audit_helpers import fill, read_lines

pytestmark = pytest.mark.audit


def test_record_fields_and_canonical_hash(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", fsync=FsyncPolicy.NEVER, clock=lambda: 1_700_000_000_123_456_789)
    rec = log.record("user:alice", Act.WORKSPACE_STARTED, target="Workspace/spe-p1/ws1", permit="p1",
                     dataset="lung-ct", details={"gpu": "A100", "b": [1, 2]})
    assert (rec.seq, rec.prev, rec.time) == (1, GENESIS_HASH, "2023-11-14T22:13:20.123456Z")
    assert rec.action == "workspace.started" and rec.outcome == "success"
    line = read_lines(tmp_path / "a.jsonl")[0]
    stored = json.loads(line)
    body = {k: v for k, v in stored.items() if k != "hash"}
    # canonical form: sorted keys, no whitespace, UTF-8; the hash is SHA-256 over it
    assert canonical(body) == json.dumps(body, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False).encode()
    assert stored["hash"] == hashlib.sha256(canonical(body)).hexdigest() == rec.hash
    # the line is the canonical body with the hash member appended
    assert line == canonical(body)[:-1] + b',"hash":"' + rec.hash.encode() + b'"}'
    second = log.record("user:bob", "permit.revoked", outcome=Outcome.DENIED)
    assert (second.seq, second.prev) == (2, rec.hash)
    log.close(checkpoint=False)


def test_unicode_is_utf8_not_escaped(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", fsync=FsyncPolicy.NEVER)
    log.record("user:zoë", Act.DATASET_INGESTED, target="Dataset/Hôpital")
    assert "zoë".encode() in (tmp_path / "a.jsonl").read_bytes()
    assert verify(tmp_path / "a.jsonl").ok


@pytest.mark.parametrize("kwargs, message", [
    ({"actor": ""}, "actor"),
    ({"action": "Started a workspace"}, "not an act name"),
    ({"outcome": "maybe"}, "outcome"),
    ({"target": 42}, "target must be a string"),
    ({"details": {"x": float("nan")}}, "Out of range float"),
    ({"details": {"when": object()}}, "details must be plain JSON"),
])
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, kwargs, message):
    log = AuditLog(tmp_path / "a.jsonl", fsync=FsyncPolicy.NEVER)
    args = {"actor": "user:a", "action": Act.PERMIT_ISSUED, **kwargs}
    with pytest.raises(ValueError, match=message):
        log.record(**args)
    assert not (tmp_path / "a.jsonl").exists() or (tmp_path / "a.jsonl").read_bytes() == b""


def test_every_documented_act_is_in_the_readme():
    from pathlib import Path
    readme = (Path(spe_audit.__file__).parent / "README.md").read_text()
    for act in Act:
        assert f"`{act.value}`" in readme, act


def test_signed_checkpoints_every_n_and_on_close(make_log, key):
    path, log = make_log(25, signing_key=key, checkpoint_every=10)
    log.close()
    recs = [json.loads(l) for l in read_lines(path)]
    cps = [r for r in recs if r["action"] == "audit.checkpoint"]
    # after seq 10 and 20 (each followed by its checkpoint), and one at close
    assert [c["details"]["checkpoint"]["seq"] for c in cps] == [10, 20, recs[-2]["seq"]]
    res = verify(path, public_keys=[key.public_key()])
    assert res.ok and res.signatures_checked == 3 and res.last_signed_seq == recs[-2]["seq"], res.summary()


def test_close_does_not_stack_checkpoints(make_log, key):
    path, log = make_log(3, signing_key=key, checkpoint_every=1000)
    log.checkpoint()
    log.close()  # the tail already is a checkpoint
    actions = [json.loads(l)["action"] for l in read_lines(path)]
    assert actions.count("audit.checkpoint") == 1


def test_threads_in_one_process_keep_the_chain(tmp_path, key):
    log = AuditLog(tmp_path / "a.jsonl", signing_key=key, checkpoint_every=50, fsync=FsyncPolicy.NEVER)
    threads = [threading.Thread(target=fill, args=(log, 100, i * 100)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    res = verify(tmp_path / "a.jsonl", public_keys=[key.public_key()])
    assert res.ok, res.summary()
    n = sum(1 for l in read_lines(tmp_path / "a.jsonl") if b'"audit.checkpoint"' not in l)
    assert n == 800


def test_writer_rereads_the_tail_written_by_another_writer(tmp_path):
    a = AuditLog(tmp_path / "a.jsonl", fsync=FsyncPolicy.NEVER)
    b = AuditLog(tmp_path / "a.jsonl", fsync=FsyncPolicy.NEVER)
    ra = a.record("user:a", Act.PERMIT_ISSUED)
    rb = b.record("user:b", Act.PERMIT_CHANGED)
    ra2 = a.record("user:a", Act.PERMIT_SUSPENDED)
    assert (rb.seq, rb.prev) == (2, ra.hash) and (ra2.seq, ra2.prev) == (3, rb.hash)
    assert verify(tmp_path / "a.jsonl").ok


def test_torn_last_line_is_closed_and_reported(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, fsync=FsyncPolicy.NEVER)
    fill(log, 3)
    log.close(checkpoint=False)
    with open(path, "ab") as f:
        f.write(b'{"action":"workspace.sta')  # a crash in the middle of a write
    log = AuditLog(path, fsync=FsyncPolicy.NEVER)
    rec = log.record("user:a", Act.WORKSPACE_STOPPED)
    assert rec.seq == 4  # continues from the last complete record
    res = verify(path)
    assert (res.problem.kind, res.problem.line) == ("truncated", 4)  # the fragment stays visible
    assert "cut short" in res.problem.message


def test_complete_last_record_without_newline_is_kept(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, fsync=FsyncPolicy.NEVER)
    fill(log, 3)
    log.close(checkpoint=False)
    path.write_bytes(path.read_bytes()[:-1])  # only the final newline lost
    assert verify(path).ok
    rec = AuditLog(path, fsync=FsyncPolicy.NEVER).record("user:a", Act.WORKSPACE_STOPPED)
    assert rec.seq == 4 and verify(path).ok


def test_garbage_tail_refuses_to_append(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"not a record\n")
    log = AuditLog(path, fsync=FsyncPolicy.NEVER)
    with pytest.raises(spe_audit.AuditError, match="not a valid record"):
        log.record("user:a", Act.PERMIT_ISSUED)


def test_rotation_keeps_the_chain(tmp_path, key):
    path = tmp_path / "logs" / "audit.jsonl"
    log = AuditLog(path, signing_key=key, checkpoint_every=1000, rotate_bytes=4096,
                   fsync=FsyncPolicy.CHECKPOINT)
    fill(log, 60)
    log.close()
    log = AuditLog(path, signing_key=key, rotate_bytes=4096, fsync=FsyncPolicy.NEVER)
    log.record("user:late", Act.WORKSPACE_STOPPED)  # a new process continues after the rotation
    log.close(checkpoint=False)
    segments = sorted(path.parent.glob("audit-*.jsonl"))
    assert len(segments) >= 3 and path.exists()
    # first record of each segment carries the hash of the last of the one before
    files = segments + [path]
    for older, newer in zip(files, files[1:]):
        last, first = json.loads(read_lines(older)[-1]), json.loads(read_lines(newer)[0])
        assert (first["seq"], first["prev"]) == (last["seq"] + 1, last["hash"])
        assert last["action"] == "audit.checkpoint"  # each segment ends signed
    assert json.loads(read_lines(path)[0])["actor"] == "user:late"
    res = verify(files, public_keys=[key.public_key()])
    assert res.ok and res.records == sum(len(read_lines(f)) for f in files), res.summary()
    # a directory is verified as one chain; a missing middle segment is a deletion
    groups = spe_audit.log_groups(path.parent)
    assert groups == [files]
    segments[1].unlink()
    res = verify(spe_audit.log_groups(path.parent)[0])
    assert res.problem.kind == "deleted" and res.problem.file == str(segments[2])
    # a lone later segment verifies only when asked to accept its start
    assert verify(segments[2]).problem.kind == "deleted"
    assert verify(segments[2], segment=True).ok


def test_rotation_by_another_process_is_followed(tmp_path):
    path = tmp_path / "audit.jsonl"
    a = AuditLog(path, fsync=FsyncPolicy.NEVER, rotate_bytes=4096)
    b = AuditLog(path, fsync=FsyncPolicy.NEVER)
    for i in range(40):
        (a if i % 2 else b).record("user:x", Act.DATASET_MOUNTED, details={"i": i, "pad": "x" * 100})
    files = spe_audit.log_groups(tmp_path)[0]
    assert len(files) > 1
    res = verify(files)
    assert res.ok and res.records == 40, res.summary()


def test_default_log_configured_once_from_settings(tmp_path):
    settings = AuditSettings(path=tmp_path / "op.jsonl", fsync="never", checkpoint_every=2)
    with pytest.raises(spe_audit.AuditError, match="not configured"):
        spe_audit.record("user:a", Act.PERMIT_ISSUED)
    spe_audit.configure(settings)
    try:
        with pytest.raises(RuntimeError, match="already configured"):
            spe_audit.configure(settings)
        rec = spe_audit.record("system:spe-operator", Act.PERMIT_ISSUED, target="DataPermit/p1", permit="p1")
        assert rec.seq == 1
    finally:
        spe_audit.shutdown()
    assert verify(tmp_path / "op.jsonl").ok


def test_settings_from_env_reads_only_when_called(tmp_path):
    env = {"SPE_AUDIT_PATH": str(tmp_path / "x.jsonl"), "SPE_AUDIT_CHECKPOINT_EVERY": "5",
           "SPE_AUDIT_FSYNC": "checkpoint", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    s = AuditSettings.from_env(env)
    assert s.checkpoint_every == 5 and s.fsync is FsyncPolicy.CHECKPOINT
    assert s.telemetry.otlp_endpoint == "http://127.0.0.1:4318"
    with pytest.raises(ValueError):
        AuditSettings.from_env({"SPE_AUDIT_PATH": "x", "SPE_AUDIT_CHECKPOINT_EVERY": "0"})
