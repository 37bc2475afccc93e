"""Identifiers in text, JSON, HTML and table cells: DICOM UIDs, dates of birth, dates,
pseudonymous patient IDs, e-mail addresses, phone numbers — and the false positives to avoid."""

from __future__ import annotations

import pytest

from spe_egress.checks import CheckContext, CheckPolicy, FileInput, Severity, find_identifiers, run_checks

pytestmark = pytest.mark.egress

IDS = {"PSN-7f3a91c2", "sub-0042ab"}

TEXT_CASES = [
    # (id, text, expected [(check, severity, matched text)])
    ("uid-vendor", "Series 1.2.840.113619.2.55.3.604688119.969.1268071029.320 looked fine.",
     [("identifier.dicom-uid", Severity.BLOCK, "1.2.840.113619.2.55.3.604688119.969.1268071029.320")]),
    ("uid-uuid-derived", "uid=2.25.329800735698586629295641978511506172918",
     [("identifier.dicom-uid", Severity.BLOCK, "2.25.329800735698586629295641978511506172918")]),
    ("uid-standard-transfer-syntax-is-info", "stored as 1.2.840.10008.1.2.1",
     [("identifier.dicom-uid", Severity.INFO, "1.2.840.10008.1.2.1")]),
    ("dob-english", "Patient born 1956-03-14 in the study.",
     [("identifier.date-of-birth", Severity.BLOCK, "1956-03-14")]),
    ("dob-abbrev", "DOB: 14/03/1956", [("identifier.date-of-birth", Severity.BLOCK, "14/03/1956")]),
    ("dob-german", "geboren am 14.03.1956", [("identifier.date-of-birth", Severity.BLOCK, "14.03.1956")]),
    ("dob-dicom-compact-json", '{"PatientBirthDate": "19560314"}',
     [("identifier.date-of-birth", Severity.BLOCK, "19560314")]),
    ("date-plain", "Scanned on 3 March 2021.", [("identifier.date", Severity.WARN, "3 March 2021")]),
    ("date-us-textual", "Visit: March 3, 2021", [("identifier.date", Severity.WARN, "March 3, 2021")]),
    ("date-iso-timestamp", "run 2024-05-01T10:00:00", [("identifier.date", Severity.WARN, "2024-05-01")]),
    ("pseudonym", "worst case PSN-7f3a91c2 had a large lesion", [("identifier.pseudonym", Severity.BLOCK, "PSN-7f3a91c2")]),
    ("pseudonym-case-and-prefix", "file sub_psn-7F3A91C2_seg.nii",
     [("identifier.pseudonym", Severity.BLOCK, "psn-7F3A91C2")]),
    ("email", "Contact: jane.doe@hospital.example.org", [("identifier.email", Severity.WARN, "jane.doe@hospital.example.org")]),
    ("phone-international", "Call +49 30 450 570 000.", [("identifier.phone", Severity.WARN, "+49 30 450 570 000")]),
    ("phone-0044", "tel 0044 20 7946 0958", [("identifier.phone", Severity.WARN, "0044 20 7946 0958")]),
    ("phone-german-national", "Ruf 030 4505 7000 an", [("identifier.phone", Severity.WARN, "030 4505 7000")]),
    ("phone-french", "appel 06 12 34 56 78", [("identifier.phone", Severity.WARN, "06 12 34 56 78")]),
    ("phone-context-compact", "Mobile: 0612345678", [("identifier.phone", Severity.WARN, "0612345678")]),
    # false-positive guards
    ("year-alone", "Data from 2024 and 2019-2021 cohorts.", []),
    ("decimals", "AUC 0.913 (95% CI 0.88-0.94), p=0.0012, loss 1.2345", []),
    ("version-string", "pydicom 3.0.2, numpy 1.26.4, model v1.2.3.4", []),
    ("ip-address", "served at 192.168.10.1", []),
    ("plain-big-number", "We processed 123456789 voxels and 0123456 slices.", []),
    ("invalid-date", "ratio 31.02.2020 is not a day", []),
    ("compact-number-without-context", "id 20210314 in the list", []),
    ("unknown-id-not-flagged", "PSN-00000000 is not in the permit", []),
    ("at-sign-not-email", "scaled @ 2x and user@localhost", []),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_identifiers_in_text(text, expected):
    report = run_checks([FileInput("notes.txt", text.encode())], CheckPolicy(), CheckContext(pseudonymous_ids=IDS))
    got = [(f.check, f.severity, text[f.location["start"]:f.location["end"]])
           for f in report.files[0].findings if f.check.startswith("identifier.")]
    assert got == expected


def test_text_location_has_line_and_exact_offsets():
    text = "line one\nline two has jane@x.org here\n"
    report = run_checks([FileInput("a.txt", text.encode())], CheckPolicy())
    (f,) = report.files[0].findings
    assert f.location == {"start": 22, "end": 32, "line": 2}
    assert text[22:32] == "jane@x.org"


def test_offsets_are_characters_of_the_decoded_text_not_bytes():
    text = "Größe: ändern — mail ü@x.org jane@x.org"
    report = run_checks([FileInput("a.txt", text.encode("utf-8"))], CheckPolicy())
    spans = [text[f.location["start"]:f.location["end"]] for f in report.files[0].findings]
    assert "jane@x.org" in spans


def test_html_scanned_and_active_content_flagged():
    html = b"<html><body><p>DOB 01.02.1950</p><script>fetch('x')</script><img src='data:image/png;base64,AAAA'></body></html>"
    report = run_checks([FileInput("r.html", html)], CheckPolicy())
    checks = {f.check: f.severity for f in report.files[0].findings}
    assert checks == {"identifier.date-of-birth": Severity.BLOCK, "html.active-content": Severity.WARN,
                      "html.embedded-data": Severity.WARN}


def test_pseudonym_in_file_name_is_flagged():
    report = run_checks([FileInput("results/PSN-7f3a91c2_volume.csv", b"model,auc\nx,0.9\n")], CheckPolicy(),
                        CheckContext(pseudonymous_ids=IDS))
    (f,) = [f for f in report.files[0].findings if f.check == "identifier.pseudonym"]
    assert f.location == {"field": "name", "start": 8, "end": 20}


def test_cells_located_by_row_and_column_and_numbers_not_phones():
    csv = ("patient,birth_date,phone,scan_date,volume_ml\n"
           "PSN-7f3a91c2,1950-02-01,+33 1 23 45 67 89,20210314,0612345678\n").encode()
    report = run_checks([FileInput("t.csv", csv)], CheckPolicy(), CheckContext(pseudonymous_ids=IDS))
    got = {(f.check, f.location["column"]) for f in report.files[0].findings if f.check.startswith("identifier.")}
    assert got == {("identifier.pseudonym", "patient"), ("identifier.date-of-birth", "birth_date"),
                   ("identifier.phone", "phone"), ("identifier.date", "scan_date")}
    f = next(f for f in report.files[0].findings if f.check == "identifier.date-of-birth")
    assert (f.location["row"], f.location["col_index"], f.location["line"]) == (0, 1, 2)


def test_find_identifiers_spans_do_not_overlap():
    text = "UID 1.2.840.113619.2.55.3.604688119.969 dated 2001-02-03 +44 20 7946 0958"
    hits = find_identifiers(text)
    assert all(a.end <= b.start for a, b in zip(hits, hits[1:]))
    assert [h.check for h in hits] == ["identifier.dicom-uid", "identifier.date", "identifier.phone"]
