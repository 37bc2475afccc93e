"""Every kind of tampering is detected and named, at the first bad record."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from spe_audit import Checkpoint, Tamper, verify
from spe_audit.checkpoint import Signer

from audit_helpers import read_lines, rehash, write_lines

pytestmark = pytest.mark.audit

# The fixture log: 30 records, a signed checkpoint after seq 10, 20, 30 and at close, so
# line n holds seq n; lines 11, 21, 31 and 34 are checkpoints.
N_LINES = 34


@pytest.fixture
def signed_log(make_log, key):
    path, log = make_log(30, signing_key=key, checkpoint_every=10)
    log.close()
    lines = read_lines(path)
    assert len(lines) == N_LINES and json.loads(lines[10])["action"] == "audit.checkpoint"
    return path, lines


def _edit_in_place(lines):
    lines[4] = lines[4].replace(b'"user:u1"', b'"user:u2"')  # seq 5, hash left as it was
    return lines


def _edit_and_rehash(lines):
    lines[4] = rehash(lines[4], actor="user:mallory")
    return lines


def _delete_one(lines):
    del lines[4]
    return lines


def _delete_several(lines):
    del lines[4:7]
    return lines


def _delete_first(lines):
    del lines[0]
    return lines


def _insert_forged_in_place_of(lines):
    # a record that claims seq 5 and links to seq 4 correctly, before the real seq 5
    lines.insert(4, rehash(lines[4], actor="user:mallory", details={"forged": True}))
    return lines


def _insert_foreign(lines):
    lines.insert(4, rehash(lines[4], seq=99, prev="ab" * 32))
    return lines


def _insert_replay(lines):
    lines.insert(4, lines[2])  # a copy of seq 3 after seq 4
    return lines


def _insert_blank(lines):
    lines.insert(4, b"")
    return lines


def _reorder(lines):
    lines[4], lines[5] = lines[5], lines[4]
    return lines


def _move_later(lines):
    lines.insert(9, lines.pop(4))
    return lines


def _renumber(lines):
    lines[4] = rehash(lines[4], seq=50)
    return lines


CASES = [
    # (mutation, kind, seq reported, line reported)
    (_edit_in_place, Tamper.EDITED, 5, 5),
    (_edit_and_rehash, Tamper.EDITED, 5, 5),
    (_delete_one, Tamper.DELETED, 6, 5),
    (_delete_several, Tamper.DELETED, 8, 5),
    (_delete_first, Tamper.DELETED, 2, 1),
    (_insert_forged_in_place_of, Tamper.INSERTED, 5, 5),
    (_insert_foreign, Tamper.INSERTED, 99, 5),
    (_insert_replay, Tamper.INSERTED, 3, 5),
    (_insert_blank, Tamper.INSERTED, None, 5),
    (_reorder, Tamper.REORDERED, 6, 5),
    (_move_later, Tamper.REORDERED, 6, 5),
    (_renumber, Tamper.EDITED, 50, 5),
]


@pytest.mark.parametrize("mutate, kind, seq, line", CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_tampering_is_detected_and_named(signed_log, key, mutate, kind, seq, line):
    path, lines = signed_log
    assert verify(path, public_keys=[key.public_key()]).ok
    write_lines(path, mutate(list(lines)))
    for keys in ([], [key.public_key()]):  # the chain alone catches these
        res = verify(path, public_keys=keys)
        assert not res.ok
        assert (res.problem.kind, res.problem.seq, res.problem.line) == (kind, seq, line), str(res.problem)


def test_truncation_after_a_published_checkpoint(signed_log):
    path, lines = signed_log
    last = json.loads(lines[-1])
    published = Checkpoint(last["seq"], last["hash"])
    write_lines(path, lines[:-4])  # cut the tail cleanly: the chain alone cannot tell
    assert verify(path).ok
    res = verify(path, checkpoint=published)
    assert res.problem.kind is Tamper.TRUNCATED and res.problem.seq == N_LINES - 4
    assert "4 record(s) were cut" in res.problem.message


def test_file_cut_mid_line_is_truncated(signed_log):
    path, lines = signed_log
    path.write_bytes(b"".join(l + b"\n" for l in lines[:-1]) + lines[-1][:40])
    res = verify(path)
    assert (res.problem.kind, res.problem.line) == (Tamper.TRUNCATED, N_LINES)


def test_bad_signature_forged_with_another_key(signed_log, key):
    path, lines = signed_log
    cp = json.loads(lines[10])
    forger = Signer(Ed25519PrivateKey.generate())
    c = cp["details"]["checkpoint"]
    lines[10] = rehash(lines[10], details={"checkpoint": c, "keyId": forger.key_id,
                                           "signature": forger.sign(c["seq"], c["hash"])})
    write_lines(path, lines[:12] + [rehash(lines[11], prev=json.loads(lines[10])["hash"])])
    res = verify(path, public_keys=[key.public_key()])
    assert (res.problem.kind, res.problem.seq, res.problem.line) == (Tamper.BAD_SIGNATURE, 11, 11)
    assert "not among the trusted public keys" in res.problem.message


def test_bad_signature_altered_bytes(signed_log, key):
    path, lines = signed_log
    cp = json.loads(lines[20])
    sig = cp["details"]["signature"]
    cp["details"]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    lines = lines[:20] + [rehash(lines[20], details=cp["details"])]
    write_lines(path, lines)
    res = verify(path, public_keys=[key.public_key()])
    assert (res.problem.kind, res.problem.seq) == (Tamper.BAD_SIGNATURE, 21)
    assert verify(path).ok  # without a key only the chain is checked (and it is consistent)


def _rewrite_from(lines, index, *, update_checkpoints=False):
    """Edit lines[index] and re-hash everything after it: a consistent forged chain."""
    out = lines[:index]
    prev = json.loads(out[-1])["hash"] if out else "0" * 64
    for i, line in enumerate(lines[index:], index):
        rec = json.loads(line)
        changes = {"prev": prev}
        if i == index:
            changes["actor"] = "user:mallory"
        if update_checkpoints and rec["action"] == "audit.checkpoint":
            d = rec["details"]
            changes["details"] = {**d, "checkpoint": {"seq": rec["seq"] - 1, "hash": prev}}
        new = rehash(line, **changes)
        out.append(new)
        prev = json.loads(new)["hash"]
    return out


def test_rewritten_chain_caught_by_signed_checkpoint(signed_log, key):
    path, lines = signed_log
    write_lines(path, _rewrite_from(lines, 4))
    res = verify(path)
    assert (res.problem.kind, res.problem.seq, res.problem.line) == (Tamper.EDITED, 10, 10)
    assert "signed by the checkpoint at seq 11" in res.problem.message


def test_rewritten_chain_with_forged_checkpoints_fails_signature(signed_log, key):
    path, lines = signed_log
    write_lines(path, _rewrite_from(lines, 4, update_checkpoints=True))
    assert verify(path).ok  # a complete forgery passes the hash chain alone ...
    res = verify(path, public_keys=[key.public_key()])  # ... but not the signatures
    assert (res.problem.kind, res.problem.seq) == (Tamper.BAD_SIGNATURE, 11)
    last = json.loads(lines[-1])
    res = verify(path, checkpoint=Checkpoint(last["seq"], last["hash"]))  # nor the published checkpoint
    assert (res.problem.kind, res.problem.seq) == (Tamper.EDITED, N_LINES)


def test_published_checkpoint_file_must_be_signed_when_keys_are_given(signed_log, key, tmp_path):
    path, lines = signed_log
    last = json.loads(lines[-2])
    unsigned = Checkpoint(last["seq"], last["hash"])
    assert verify(path, checkpoint=unsigned).ok
    res = verify(path, public_keys=[key.public_key()], checkpoint=unsigned, checkpoint_trusted=False)
    assert res.problem.kind is Tamper.BAD_SIGNATURE
    signer = Signer(key)
    signed = Checkpoint(last["seq"], last["hash"], signature=signer.sign(last["seq"], last["hash"]),
                        key_id=signer.key_id)
    assert verify(path, public_keys=[key.public_key()], checkpoint=signed, checkpoint_trusted=False).ok


def test_reformatted_line_is_accepted_unless_strict(signed_log):
    path, lines = signed_log
    lines[4] = json.dumps(json.loads(lines[4]), indent=None).encode()  # spaces after separators
    write_lines(path, lines)
    assert verify(path).ok
    res = verify(path, strict=True)
    assert (res.problem.kind, res.problem.seq) == (Tamper.EDITED, 5)


def test_strict_refuses_a_non_canonical_body_even_with_a_matching_hash(signed_log):
    import hashlib
    path, lines = signed_log
    rec = json.loads(lines[-1])
    rec.pop("hash")
    body = json.dumps(dict(reversed(list(rec.items()))), separators=(",", ":")).encode()  # unsorted keys
    lines[-1] = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'
    write_lines(path, lines)
    assert verify(path).ok  # consistent bytes: the chain holds
    res = verify(path, strict=True)
    assert (res.problem.kind, res.problem.seq) == (Tamper.EDITED, N_LINES)
