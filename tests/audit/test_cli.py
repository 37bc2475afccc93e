"""``spe-audit`` as a user runs it: exit codes, messages, tables."""

from __future__ import annotations

import json
import subprocess

import pytest

from spe_audit import AuditLog, Checkpoint
from spe_audit.publish import checkpoint_configmap

from audit_helpers import SPE_AUDIT, read_lines, write_lines

pytestmark = pytest.mark.audit


def run(*args, check_rc=None):
    p = subprocess.run([str(SPE_AUDIT), *map(str, args)], capture_output=True, text=True, timeout=60)
    if check_rc is not None:
        assert p.returncode == check_rc, (p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture
def cli_log(tmp_path, key_files):
    """Five records written by the library (fast); the CLI reads them as an auditor would."""
    priv, pub = key_files
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, signing_key=priv, checkpoint_every=2, fsync="never")
    for actor, action, permit in [
            ("user:dac", "permit.issued", "p1"), ("user:alice", "workspace.started", "p1"),
            ("user:alice", "dataset.mounted", "p1"), ("user:bob", "workspace.started", "p2"),
            ("user:alice", "export.requested", "p1")]:
        log.record(actor, action, permit=permit, target=f"Workspace/spe-{permit}/ws")
    log.close(checkpoint=False)
    return path, pub


def test_help_lists_the_commands():
    out = run("--help", check_rc=0).stdout
    for cmd in ("verify", "append", "show", "keygen"):
        assert cmd in out
    assert "--checkpoint SEQ:HASH" in run("verify", "--help", check_rc=0).stdout


def test_verify_intact_exits_0(cli_log):
    log, pub = cli_log
    out = run("verify", log, "--public-key", pub, check_rc=0).stdout
    assert out.startswith("OK 9 records") and "signature(s) verified" in out


def test_verify_tampered_exits_1_naming_the_record(cli_log):
    log, pub = cli_log
    lines = read_lines(log)
    lines[1] = lines[1].replace(b"user:alice", b"user:carol")
    write_lines(log, lines)
    p = run("verify", log, "--public-key", pub, check_rc=1)
    assert "audit.jsonl:2: seq 2: edited:" in p.stderr


def test_verify_truncation_against_published_configmap(cli_log, tmp_path):
    log, pub = cli_log
    last = json.loads(read_lines(log)[-1])
    cm = tmp_path / "cm.json"
    cm.write_text(json.dumps(checkpoint_configmap(Checkpoint(last["seq"], last["hash"]),
                                                  namespace="spe-system", name="spe-audit-checkpoint")))
    run("verify", log, "--checkpoint-file", cm, check_rc=0)
    run("verify", log, "--checkpoint", f"{last['seq']}:{last['hash']}", check_rc=0)
    write_lines(log, read_lines(log)[:-2])
    p = run("verify", log, "--checkpoint", f"{last['seq']}:{last['hash']}", check_rc=1)
    assert "truncated" in p.stderr and "2 record(s) were cut" in p.stderr
    # an unsigned published checkpoint is not trusted once keys are given
    p = run("verify", log, "--checkpoint-file", cm, "--public-key", pub, check_rc=1)
    assert "bad signature" in p.stderr


@pytest.mark.parametrize("args", [
    ["verify"],
    ["verify", "/nonexistent/audit.jsonl"],
    ["verify", "{log}", "--checkpoint", "12"],
    ["verify", "{log}", "--public-key", "/nonexistent.pem"],
    ["append", "{log}", "--actor", "user:a"],
    ["append", "{log}", "--actor", "user:a", "--action", "Did Things"],
    ["append", "{log}", "--actor", "user:a", "--action", "audit.manual", "--details", "[1]"],
    ["show", "{log}", "--since", "yesterday"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(cli_log, args):
    log, _ = cli_log
    p = run(*[a.replace("{log}", str(log)) for a in args])
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.strip()


def test_append_prints_seq_and_hash_and_signs_every_n(tmp_path, key_files):
    priv, pub = key_files
    log = tmp_path / "a.jsonl"
    out = run("append", log, "--actor", "user:ops", "--action", "audit.manual",
              "--details", '{"ticket": "INC-1"}', check_rc=0).stdout
    assert out.startswith("seq 1 hash ")
    assert json.loads(read_lines(log)[0])["details"] == {"ticket": "INC-1"}
    run("append", log, "--actor", "user:dpo", "--action", "permit.revoked", "--permit", "p1",
        "--outcome", "success", "--signing-key", priv, "--checkpoint-every", 2, check_rc=0)
    assert [json.loads(l)["action"] for l in read_lines(log)] == ["audit.manual", "permit.revoked",
                                                                   "audit.checkpoint"]
    run("verify", log, "--public-key", pub, check_rc=0)


def test_show_table_and_filters(cli_log):
    log, _ = cli_log
    out = run("show", log, check_rc=0).stdout.splitlines()
    assert out[0].split()[:4] == ["SEQ", "TIME", "ACTOR", "ACTION"]
    assert len(out) == 1 + 5  # checkpoints hidden by default
    alice = run("show", log, "--actor", "user:alice", "--permit", "p1", check_rc=0).stdout.splitlines()[1:]
    assert len(alice) == 3 and all("user:alice" in l for l in alice)
    assert len(run("show", log, "--action", "workspace.", check_rc=0).stdout.splitlines()) == 1 + 2
    assert len(run("show", log, "--since", "2999-01-01", check_rc=0).stdout.splitlines()) == 1
    assert len(run("show", log, "--since", "2000-01-01T00:00:00Z", check_rc=0).stdout.splitlines()) == 6
    js = run("show", log, "--checkpoints", "--json", check_rc=0).stdout.splitlines()
    assert len(js) == 9 and json.loads(js[2])["action"] == "audit.checkpoint"


def test_keygen_and_directory_verify(tmp_path):
    run("keygen", "--private-key", tmp_path / "k.pem", "--public-key", tmp_path / "k.pub", check_rc=0)
    run("keygen", "--private-key", tmp_path / "k.pem", "--public-key", tmp_path / "k2.pub", check_rc=2)
    d = tmp_path / "logs"
    for name in ("operator.jsonl", "egress.jsonl"):
        run("append", d / name, "--actor", "user:a", "--action", "tool.approved",
            "--signing-key", tmp_path / "k.pem", "--checkpoint-every", 1, check_rc=0)
    out = run("verify", d, "--public-key", tmp_path / "k.pub", check_rc=0).stdout.splitlines()
    assert len(out) == 2 and all(l.startswith("OK 2 records") for l in out)
