"""The report as a record: verdicts, stable machine-readable form, signature round trip and
tamper detection, and the call forms the gateway uses."""

from __future__ import annotations

import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spe_egress.checks import (CheckContext, CheckPolicy, CheckReport, FileInput, Severity, canonical_json,
                               released_table_fingerprint, run_checks, sign_report, verify_report_signature)

pytestmark = pytest.mark.egress

FILES = [
    FileInput("results/by_ward.csv", b"ward,male,female\nA,12,3\nB,25,0\n"),
    FileInput("results/metrics.json", b'{"auc": 0.91, "contact": "jane@x.org"}'),
    FileInput("results/readme.txt", "Model trained on 1,204 studies. Résumé: ok.\n".encode()),
]


def report() -> CheckReport:
    return run_checks(FILES, CheckPolicy(), CheckContext(pseudonymous_ids={"PSN-1"}))


def test_verdicts_per_file_and_overall():
    r = report()
    assert [f.verdict for f in r.files] == ["block", "review", "pass"]
    assert r.verdict == "block"
    assert run_checks([FILES[2]]).verdict == "pass"
    assert run_checks([]).verdict == "pass"


def test_to_dict_is_json_with_stable_key_order_and_deterministic():
    a, b = report().to_dict(), report().to_dict()
    assert json.dumps(a) == json.dumps(b)  # byte-identical across runs: no clock, no randomness
    assert list(a) == ["version", "verdict", "summary", "policy", "findings", "files"]
    assert list(a["files"][0]) == ["name", "size", "sha256", "detected_type", "family", "verdict", "findings"]
    assert list(a["files"][0]["findings"][0]) == ["check", "severity", "message", "location"]
    assert a["summary"] == {"files": 3, "info": 1, "warn": 2, "block": 1}
    assert {f["severity"] for fr in a["files"] for f in fr["findings"]} <= {"info", "warn", "block"}


def test_signature_round_trip_and_tamper_detection():
    key = Ed25519PrivateKey.generate()
    signed = sign_report(report().to_dict(), key)
    assert verify_report_signature(signed, key.public_key())
    assert verify_report_signature(json.loads(json.dumps(signed)), key.public_key())  # survives storage as JSON
    tampered = copy.deepcopy(signed)
    tampered["files"][0]["findings"][1]["severity"] = "info"
    assert not verify_report_signature(tampered, key.public_key())
    tampered = copy.deepcopy(signed)
    tampered["verdict"] = "pass"
    assert not verify_report_signature(tampered, key.public_key())
    assert not verify_report_signature(signed, Ed25519PrivateKey.generate().public_key())
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    assert not verify_report_signature(unsigned, key.public_key())
    garbled = copy.deepcopy(signed)
    garbled["signature"]["value"] = "not base64!"
    assert not verify_report_signature(garbled, key.public_key())


def test_signature_with_raw_key_bytes_as_the_gateway_holds_them():
    seed = bytes(range(32))
    signed = sign_report({"verdict": "pass", "files": []}, seed)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw_public = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert verify_report_signature(signed, raw_public)
    assert verify_report_signature(signed, seed)  # the private seed stands for its public key
    assert not verify_report_signature(signed, bytes(32 * [7]))
    assert signed["signature"]["algorithm"] == "Ed25519"


def test_signature_covers_canonical_json_regardless_of_key_order():
    key = Ed25519PrivateKey.generate()
    signed = sign_report({"b": 1, "a": {"y": "é", "x": [1, 2]}}, key)
    reordered = {"signature": signed["signature"], "a": {"x": [1, 2], "y": "é"}, "b": 1}
    assert verify_report_signature(reordered, key.public_key())
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_policy_accepts_extension_spellings_and_validates():
    policy = CheckPolicy(allowed_types=["CSV", "jpg", ".md", "csv"])
    assert policy.allowed_types == ("csv", "jpeg", "markdown")
    with pytest.raises(ValueError):
        CheckPolicy(dominance_k=1.5)
    with pytest.raises(ValueError):
        CheckPolicy(min_cell_count=0)


def test_fingerprint_accepts_name_and_data():
    assert released_table_fingerprint(FILES[0].name, FILES[0].data) == released_table_fingerprint(FILES[0])


def test_severity_is_ordered_and_prints_as_value():
    assert Severity.INFO.rank < Severity.WARN.rank < Severity.BLOCK.rank
    assert str(Severity.WARN) == "warn"
