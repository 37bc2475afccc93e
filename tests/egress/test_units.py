"""Fast unit tests: quarantine encryption, release links and bundles, votes, rendering, keys."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import pytest

from spe_egress import decisions, render
from spe_egress.keys import GatewayKeys, read_secret_file
from spe_egress.quarantine import Quarantine, QuarantineError
from spe_egress.release import (CHECK_RECORD_NAME, LinkError, build_bundle, release_path, safe_member_name,
                                verify_link)

pytestmark = pytest.mark.egress

KEY = bytes(range(32))


def test_quarantine_is_encrypted_bound_and_purged(tmp_path):
    q = Quarantine(tmp_path, KEY)
    data = b"secret,table\n1,2\n" * 100
    digest = q.put("ns", "er-1", 1, 0, data)
    assert digest == hashlib.sha256(data).hexdigest()
    blob = (tmp_path / "ns" / "er-1" / "r1" / "0.bin").read_bytes()
    assert b"secret" not in blob and len(blob) == len(data) + 12 + 16
    assert q.get("ns", "er-1", 1, 0, digest) == data
    # a blob moved to another request, or a wrong digest, or a flipped bit: refused
    (tmp_path / "ns" / "er-2" / "r1").mkdir(parents=True)
    (tmp_path / "ns" / "er-2" / "r1" / "0.bin").write_bytes(blob)
    with pytest.raises(QuarantineError):
        q.get("ns", "er-2", 1, 0, digest)
    with pytest.raises(QuarantineError):
        q.get("ns", "er-1", 1, 0, "0" * 64)
    tampered = bytearray(blob)
    tampered[20] ^= 1
    (tmp_path / "ns" / "er-1" / "r1" / "0.bin").write_bytes(bytes(tampered))
    with pytest.raises(QuarantineError):
        q.get("ns", "er-1", 1, 0, digest)
    with pytest.raises(QuarantineError):
        Quarantine(tmp_path, bytes(32)).get("ns", "er-2", 1, 0, digest)  # wrong key
    assert q.purge("ns", "er-1") and not q.exists("ns", "er-1")
    assert q.get("ns", "e", 1, 0, q.put("ns", "e", 1, 0, b"")) == b""  # an empty file is one sealed segment
    assert not q.purge("ns", "er-1")  # idempotent
    with pytest.raises(QuarantineError):
        q.put("..", "x", 1, 0, b"")


def test_quarantine_streams_in_sealed_segments(tmp_path):
    from spe_egress.quarantine import SEGMENT_BYTES, TAG_BYTES
    q = Quarantine(tmp_path, KEY)
    data = os.urandom(3 * SEGMENT_BYTES + 17)
    w = q.writer("ns", "er-1", 1, 0)
    for i in range(0, len(data), 10_000):  # written as it arrives, in pieces of any size
        w.write(data[i:i + 10_000])
    digest, size = w.close()
    assert size == len(data) and q.get("ns", "er-1", 1, 0, digest) == data
    path = tmp_path / "ns" / "er-1" / "r1" / "0.bin"
    blob = path.read_bytes()
    head, step = 12, SEGMENT_BYTES + TAG_BYTES
    segs = [blob[head + i:head + i + step] for i in range(0, len(blob) - head, step)]
    for forged in (blob[:head] + b"".join(segs[:3]),                          # truncated at a segment edge
                   blob[:head] + segs[1] + segs[0] + b"".join(segs[2:])):     # segments reordered
        path.write_bytes(forged)
        with pytest.raises(QuarantineError):
            q.get("ns", "er-1", 1, 0, digest)
    w = q.writer("ns", "er-1", 1, 1)
    w.write(b"half a file")
    w.abort()  # an aborted upload leaves nothing behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["0.bin"]


def test_release_links_are_signed_and_expire():
    path = release_path(KEY, "ns", "er-1", 2, 1000)
    q = dict(part.split("=") for part in path.split("?", 1)[1].split("&"))
    assert verify_link(KEY, "ns", "er-1", q["round"], q["exp"], q["sig"], now=999).round == 2
    with pytest.raises(LinkError, match="expired"):
        verify_link(KEY, "ns", "er-1", q["round"], q["exp"], q["sig"], now=1001)
    with pytest.raises(LinkError, match="signature"):
        verify_link(KEY, "ns", "er-1", q["round"], "99999", q["sig"], now=999)  # extended expiry
    with pytest.raises(LinkError, match="signature"):
        verify_link(KEY, "ns", "er-2", q["round"], q["exp"], q["sig"], now=999)  # another request
    with pytest.raises(LinkError, match="signature"):
        verify_link(bytes(32), "ns", "er-1", q["round"], q["exp"], q["sig"], now=999)
    with pytest.raises(LinkError, match="incomplete"):
        verify_link(KEY, "ns", "er-1", None, q["exp"], q["sig"], now=999)


def test_bundle_holds_files_and_record_without_traversal():
    taken: set[str] = set()
    assert safe_member_name("../../etc/passwd", taken) == "passwd"
    assert safe_member_name("a/passwd", taken) == "passwd-1"
    assert safe_member_name(CHECK_RECORD_NAME, taken) != CHECK_RECORD_NAME
    z = zipfile.ZipFile(io.BytesIO(build_bundle([("results/t.csv", b"a,b\n"), ("../x.txt", b"x")], {"k": 1})))
    assert sorted(z.namelist()) == sorted(["t.csv", "x.txt", CHECK_RECORD_NAME])
    assert json.loads(z.read(CHECK_RECORD_NAME)) == {"k": 1}


def ballot(*votes, comment="because"):
    return {i: {"vote": v, "comment": "" if v == "approve" else comment, "visibility": "public"}
            for i, v in enumerate(votes)}


@pytest.mark.parametrize(("ballots", "phase", "approved"), [
    ([("approve", "approve")], None, ()),                                      # one of two
    ([("approve", "approve"), ("approve", "approve")], "Approved", (0, 1)),
    ([("approve", "reject"), ("approve", "approve")], "Approved", (0,)),      # partial release
    ([("reject", "reject"), ("approve", "approve")], "Rejected", ()),
    ([("approve", "changes"), ("approve", "approve")], "Returned", ()),
    ([("reject", "reject"), ("reject", "reject")], "Rejected", ()),
])
def test_tally(ballots, phase, approved):
    ds = [{"reviewer": f"r{i}", "round": 1, "votes": decisions.validate_ballot(ballot(*b), 2, set())}
          for i, b in enumerate(ballots)]
    out = decisions.tally(ds, 1, 2, required=2)
    assert out.phase == phase and out.approved_files == approved


def test_ballot_rules():
    with pytest.raises(decisions.VoteError, match="every file"):
        decisions.validate_ballot(ballot("approve"), 2, set())
    with pytest.raises(decisions.VoteError, match="blocked"):
        decisions.validate_ballot(ballot("approve"), 1, {0})
    with pytest.raises(decisions.VoteError, match="comment"):
        decisions.validate_ballot({0: {"vote": "reject", "comment": ""}}, 1, set())
    with pytest.raises(decisions.VoteError, match="one of"):
        decisions.validate_ballot({0: {"vote": "maybe"}}, 1, set())


def test_votes_hidden_until_own_cast_and_private_comments_never_public():
    ds = [{"reviewer": "ada", "round": 1, "votes": [{"file": 0, "vote": "reject", "comment": "tiny cell",
                                                    "visibility": "private"}]},
          {"reviewer": "old", "round": 0, "votes": [{"file": 0, "vote": "changes", "comment": "fix it",
                                                    "visibility": "public"}]}]
    assert [d["reviewer"] for d in decisions.visible_decisions(ds, 1, "bob")] == ["old"]
    mine = ds + [{"reviewer": "bob", "round": 1, "votes": []}]
    assert len(decisions.visible_decisions(mine, 1, "bob")) == 3
    assert decisions.public_comments(ds, {0, 1}) == [{"round": 0, "file": 0, "vote": "changes", "comment": "fix it"}]
    assert decisions.public_comments(ds, set()) == []  # undecided rounds show nothing


def test_render_table_flags_cells_and_text_spans():
    csv = b"site,count\nA,3\nB,120\n"
    view = render.render_table("t.csv", csv, [{"severity": "BLOCK", "message": "small",
                                               "location": {"row": 0, "column": "count", "col_index": 1}}])
    assert view["rows"][0][1] == {"v": "3", "sev": "BLOCK", "msgs": ["small"]}
    assert view["rows"][1][1]["sev"] == ""
    txt = render.render_text(b"mail me at a@b.org now", [{"severity": "WARN", "message": "e-mail",
                                                         "location": {"start": 11, "end": 18}}])
    assert [s["t"] for s in txt["segments"]] == ["mail me at ", "a@b.org", " now"]
    assert render.kind_of("x.png", b"\x89PNG\r\n\x1a\n....") == "image"
    assert render.kind_of("x.dat", b"\x00\xff\xfe") == "binary"


def test_keys_are_derived_apart_and_secret_formats(tmp_path):
    k = GatewayKeys.from_secret(b"s" * 32)
    assert len({k.quarantine, k.links, k.reports, k.sessions}) == 4
    with pytest.raises(ValueError):
        GatewayKeys.from_secret(b"short")
    raw = bytes(range(32))
    (tmp_path / "hex").write_text(raw.hex() + "\n")
    assert read_secret_file(tmp_path / "hex") == raw
    import base64
    (tmp_path / "b64").write_text(base64.b64encode(raw).decode())
    assert read_secret_file(tmp_path / "b64") == raw
