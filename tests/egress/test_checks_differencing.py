"""Differencing: a new count table against tables already released under the permit (the
ledger) and against other tables in the same request."""

from __future__ import annotations

import json

import pytest

from spe_egress.checks import CheckContext, CheckPolicy, FileInput, Severity, released_table_fingerprint, run_checks

pytestmark = pytest.mark.egress

RELEASED = FileInput("release1/by_ward.csv", b"ward,male,female\nA,120,130\nB,250,241\nC,60,75\n")


def ledger(*files: FileInput) -> CheckContext:
    return CheckContext(released_tables=[released_table_fingerprint(f) for f in files])


def diff_findings(new: bytes, ctx: CheckContext, name: str = "release2/by_ward.csv"):
    report = run_checks([FileInput(name, new)], CheckPolicy(), ctx)
    return report, [(f.severity, f.location["row"], f.location["column"], f.location["released_value"], f.location["value"])
                    for f in report.files[0].findings if f.check == "sdc.differencing"]


B, W = Severity.BLOCK, Severity.WARN
DIFF_CASES = [
    ("subset-reveals-small-group", b"ward,male,female\nA,117,130\nB,250,241\nC,60,75\n", [(B, 0, "male", 120, 117)]),
    ("several-small-changes-all-small", b"ward,male,female\nA,118,130\nB,250,236\nC,60,75\n",
     [(B, 0, "male", 120, 118), (B, 1, "female", 241, 236)]),
    ("rows-reordered-still-aligned-by-label", b"ward,male,female\nC,60,75\nA,117,130\nB,250,241\n", [(B, 1, "male", 120, 117)]),
    ("small-change-among-large-changes-is-warn", b"ward,male,female\nA,160,170\nB,290,243\nC,90,110\n",
     [(W, 1, "female", 241, 243)]),
    ("all-changes-large-is-fine", b"ward,male,female\nA,160,170\nB,290,281\nC,90,110\n", []),
    ("identical-counts-is-fine", b"ward,male,female\nA,120,130\nB,250,241\nC,60,75\n", []),
    ("different-labels-not-compared", b"site,male,female\nX,117,130\nY,250,241\nZ,60,75\n", []),
    ("different-columns-not-compared", b"ward,young,old\nA,117,130\nB,250,241\nC,60,75\n", []),
]


@pytest.mark.parametrize("new,expected", [c[1:] for c in DIFF_CASES], ids=[c[0] for c in DIFF_CASES])
def test_differencing_against_ledger(new, expected):
    _, got = diff_findings(new, ledger(RELEASED))
    assert got == expected


def test_same_file_released_again_is_not_flagged():
    _, got = diff_findings(RELEASED.data, ledger(RELEASED), name=RELEASED.name)
    assert got == []


def test_message_explains_the_subtraction():
    report, _ = diff_findings(b"ward,male,female\nA,117,130\nB,250,241\nC,60,75\n", ledger(RELEASED))
    (f,) = [f for f in report.files[0].findings if f.check == "sdc.differencing"]
    assert "release1/by_ward.csv" in f.message and "group of 3" in f.message
    assert f.location["released"] == "release1/by_ward.csv" and f.location["col_index"] == 1


def test_differencing_within_one_request():
    first = FileInput("all.csv", RELEASED.data)
    second = FileInput("without_trial.csv", b"ward,male,female\nA,120,126\nB,250,241\nC,60,75\n")
    report = run_checks([first, second], CheckPolicy())
    (f,) = [f for f in report.files[1].findings if f.check == "sdc.differencing"]
    assert f.severity is B and "another file in this request" in f.message
    assert not [f for f in report.files[0].findings if f.check == "sdc.differencing"]


def test_fingerprint_is_json_and_only_for_frequency_tables():
    entry = released_table_fingerprint(RELEASED)
    assert json.loads(json.dumps(entry)) == entry
    assert entry["count_columns"] == ["male", "female"] and entry["rows"][0] == {"key": ["A"], "counts": [120, 130]}
    assert released_table_fingerprint(FileInput("m.csv", b"model,auc\nx,0.9\n")) is None
    assert released_table_fingerprint(FileInput("f.png", b"\x89PNG\r\n\x1a\n")) is None


def test_unknown_ledger_versions_are_ignored():
    entry = dict(released_table_fingerprint(RELEASED), version=999)
    _, got = diff_findings(b"ward,male,female\nA,117,130\nB,250,241\nC,60,75\n", CheckContext(released_tables=[entry]))
    assert got == []


def test_rows_keyed_by_every_non_count_column():
    old = FileInput("r1.csv", b"site,year,n\nA,2023,40\nA,2024,50\nB,2023,60\nB,2024,70\n")
    new = b"site,year,n\nA,2023,40\nA,2024,46\nB,2023,60\nB,2024,70\n"
    _, got = diff_findings(new, ledger(old), name="r2.csv")
    assert got == [(B, 1, "n", 50, 46)]
    assert released_table_fingerprint(old)["key_columns"] == ["site", "year"]


def test_dates_in_file_names_are_not_flagged():
    report = run_checks([FileInput("results_2024-05-01.csv", b"model,auc\nx,0.9\n")], CheckPolicy())
    assert not [f for f in report.files[0].findings if f.check.startswith("identifier.")]


def test_ledger_tolerates_empty_entries():
    ctx = CheckContext(released_tables=[None, released_table_fingerprint(RELEASED)])
    _, got = diff_findings(b"ward,male,female\nA,117,130\nB,250,241\nC,60,75\n", ctx)
    assert got == [(B, 0, "male", 120, 117)]
