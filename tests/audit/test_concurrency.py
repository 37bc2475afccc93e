"""Several processes (and threads in them) appending to one file keep one valid chain."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import threading

import pytest

from spe_audit import Act, AuditLog, FsyncPolicy, verify

from audit_helpers import SPE_AUDIT, fill, read_lines

pytestmark = pytest.mark.audit

PROCS, PER_PROC = 4, 150


def _writer(path: str, worker: int, key_pem: bytes | None) -> None:
    log = AuditLog(path, signing_key=key_pem, checkpoint_every=100, fsync=FsyncPolicy.ALWAYS)
    for i in range(PER_PROC):
        log.record(f"user:w{worker}", Act.EXPORT_DOWNLOADED, target=f"OutputReview/ns/r{i}",
                   details={"worker": worker, "i": i})
    log.close(checkpoint=False)


def _inherited_writer(log: AuditLog, worker: int) -> None:
    # the parent's AuditLog object, used in a forked child: it must take its own lock
    t = threading.Thread(target=fill, args=(log, PER_PROC // 2, worker * 1000))
    t.start()
    fill(log, PER_PROC // 2, worker * 1000 + 500)
    t.join()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_processes_append_concurrently(tmp_path, key, start_method):
    from cryptography.hazmat.primitives import serialization
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = tmp_path / "shared.jsonl"
    ctx = multiprocessing.get_context(start_method)
    procs = [ctx.Process(target=_writer, args=(str(path), w, pem)) for w in range(PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    res = verify(path, public_keys=[key.public_key()])
    assert res.ok, res.summary()
    recs = [json.loads(l) for l in read_lines(path)]
    real = [r for r in recs if r["action"] != "audit.checkpoint"]
    assert len(real) == PROCS * PER_PROC
    # every worker's records are all there, in its own order
    for w in range(PROCS):
        mine = [r["details"]["i"] for r in real if r["details"]["worker"] == w]
        assert mine == list(range(PER_PROC))
    assert res.signatures_checked >= len(real) // 100 - 1


def test_forked_children_sharing_the_parents_log_object(tmp_path):
    path = tmp_path / "shared.jsonl"
    log = AuditLog(path, fsync=FsyncPolicy.NEVER)
    log.record("system:parent", Act.PERMIT_ISSUED)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_inherited_writer, args=(log, w)) for w in range(3)]
    for p in procs:
        p.start()
    fill(log, 50, 9000)  # the parent keeps writing meanwhile
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    log.close(checkpoint=False)
    res = verify(path)
    assert res.ok and res.records == 1 + 3 * PER_PROC + 50, res.summary()


def test_cli_appends_race_with_a_library_writer(tmp_path):
    path = tmp_path / "shared.jsonl"
    cli = [subprocess.Popen([str(SPE_AUDIT), "append", str(path), "--actor", f"user:ops{i}",
                             "--action", "audit.manual", "--details", '{"why":"test"}'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
    log = AuditLog(path, fsync=FsyncPolicy.NEVER)
    fill(log, 100)
    for p in cli:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    log.close(checkpoint=False)
    res = verify(path)
    assert res.ok and res.records == 104, res.summary()
