"""What spe-ingest gained for the Dataset reconciler: shards whose merge equals one whole run,
the Job's summary (termination message), the hashed pseudonyms, and the Dataset fields it used
to ignore (date-shift bound, quasi-identifiers, screenshots, secondary captures)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pydicom
import pytest

from spe_ingest import cli

from spe_dev.sourcedata import SourceSpec, write_source

pytestmark = pytest.mark.dataset


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "key"
    path.write_bytes(bytes(range(48)))
    return path


def run(src: Path, dst: Path, key: Path, *extra: str) -> int:
    return cli.main(["run", str(src), str(dst), "--key-file", str(key), "--site", "s", "--project", "p",
                     "--workers", "1", *extra])


RPC = ("--option", "retain-patient-characteristics")  # keeps age and sex: k is over them


def manifest(dst: Path) -> dict:
    return json.loads((dst / "manifest.json").read_text())["manifest"]


def test_two_shards_then_a_merge_equal_one_whole_run(tmp_path, key, capsys):
    src = tmp_path / "src"
    write_source(src, SourceSpec(patients=10, per_patient=3, classes=2))
    assert run(src, tmp_path / "whole", key, *RPC, "--k-threshold", "3") == 0
    merged = tmp_path / "merged"
    for index in (0, 1):
        assert run(src, merged, key, *RPC, "--shard-count", "2", "--shard-index", str(index)) == 0
    shard_inputs = [int(line.split(": ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()
                    if line.startswith("shard ")]
    assert len(shard_inputs) == 2 and sum(shard_inputs) == 30 and all(n > 0 for n in shard_inputs)
    assert not (merged / "manifest.json").exists()  # shards sign nothing
    assert run(src, merged, key, *RPC, "--k-threshold", "3", "--summary-file", str(tmp_path / "summary")) == 0
    assert manifest(merged) == manifest(tmp_path / "whole")
    summary = json.loads((tmp_path / "summary").read_text())
    assert summary["status"] == "accepted" and summary["counts"]["accepted"] == 30
    assert summary["k"]["k"] == 5 and summary["manifestDigest"].startswith("sha256:")


def test_shard_index_comes_from_the_indexed_job(tmp_path, key, monkeypatch):
    src = tmp_path / "src"
    write_source(src, SourceSpec(patients=4, per_patient=1))
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert run(src, tmp_path / "d", key, "--shard-count", "2") == 0
    assert (tmp_path / "d" / ".spe-ingest" / "shard-1-of-2.jsonl").is_file()
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    assert run(src, tmp_path / "e", key, "--shard-count", "2") == 2


def test_summary_of_a_refusal_says_why_and_fits_a_termination_message(tmp_path, key):
    src = tmp_path / "src"
    write_source(src, SourceSpec(patients=4, per_patient=1, classes=2, lonely=True))
    summary = tmp_path / "summary"
    assert run(src, tmp_path / "d", key, *RPC, "--k-threshold", "2", "--summary-file", str(summary)) == 3
    doc = json.loads(summary.read_text())
    assert doc["status"] == "refused" and doc["exitCode"] == 3
    assert doc["k"]["k"] == 1 and doc["k"]["threshold"] == 2 and doc["k"]["classesBelowThreshold"] == 1
    assert "below 2" in doc["message"]
    assert len(summary.read_bytes()) <= 4096


def test_usage_errors_are_summarised_too(tmp_path, key):
    summary = tmp_path / "summary"
    assert run(tmp_path / "missing", tmp_path / "d", key, "--summary-file", str(summary)) == 2
    doc = json.loads(summary.read_text())
    assert doc["status"] == "error" and "is not a directory" in doc["message"]


def test_pseudonyms_lists_one_hash_per_accepted_patient(tmp_path, key, capsys):
    src = tmp_path / "src"
    write_source(src, SourceSpec(patients=5, per_patient=2))
    assert run(src, tmp_path / "d", key) == 0
    capsys.readouterr()
    assert cli.main(["pseudonyms", str(tmp_path / "d")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines == sorted(lines) and all(len(x) == 64 for x in lines)
    journal = (tmp_path / "d" / ".spe-ingest" / "journal.jsonl").read_text()
    assert not any(x in journal for x in lines)  # hashes, not the pseudonyms themselves


def test_date_shift_stays_within_the_bound(tmp_path, key):
    src = tmp_path / "src"
    write_source(src, SourceSpec(patients=8, per_patient=1))
    original = {pydicom.dcmread(p).StudyDate for p in src.rglob("*.dcm")}
    assert len(original) == 1
    before = dt.datetime.strptime(original.pop(), "%Y%m%d").date()
    assert run(src, tmp_path / "d", key, "--option", "retain-longitudinal-modified-dates",
               "--date-shift-max-days", "3") == 0
    shifts = {(before - dt.datetime.strptime(pydicom.dcmread(p).StudyDate, "%Y%m%d").date()).days
              for p in (tmp_path / "d" / "data").rglob("*.dcm")}
    assert shifts and shifts <= {1, 2, 3}, shifts


def test_k_is_measured_over_the_named_quasi_identifiers_only(tmp_path, key):
    src = tmp_path / "src"
    # Four (sex, age) classes of 2, but only two sexes: k=2 over both, k=4 over sex alone.
    write_source(src, SourceSpec(patients=8, per_patient=1, classes=4))
    opts = (*RPC, "--k-threshold", "3")
    assert run(src, tmp_path / "both", key, *opts, "--quasi-identifier", "PatientSex",
               "--quasi-identifier", "PatientAge") == 3
    assert run(src, tmp_path / "sex", key, *opts, "--quasi-identifier", "PatientSex") == 0
    assert manifest(tmp_path / "sex")["k_anonymity"]["k"] == 4


def test_screenshots_and_secondary_captures_follow_the_dataset(tmp_path, key):
    src = tmp_path / "src"
    write_source(src, SourceSpec(patients=2, per_patient=2))
    files = sorted(src.rglob("*.dcm"))
    shot = pydicom.dcmread(files[0])
    shot.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    shot.save_as(files[0])
    sc = pydicom.dcmread(files[1])
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.save_as(files[1])

    def outcomes(dst: Path) -> dict:
        return json.loads((dst / "report.json").read_text())["outcomes"]
    assert run(src, tmp_path / "default", key) == 0
    default = outcomes(tmp_path / "default")
    assert default["dropped"] == {"screenshot": 1} and default["quarantined"] == {"secondary-capture": 1}
    assert run(src, tmp_path / "flipped", key, "--screenshots", "quarantine", "--secondary-captures", "drop") == 0
    flipped = outcomes(tmp_path / "flipped")
    assert flipped["quarantined"] == {"screenshot": 1} and flipped["dropped"] == {"secondary-capture": 1}
