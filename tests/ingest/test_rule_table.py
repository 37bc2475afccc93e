"""The checked-in PS3.15 Table E.1-1 rule table: shape, freshness, cross-check."""
from __future__ import annotations

import pytest

from spe_ingest import rules
from spe_ingest.rules import build_table

pytestmark = pytest.mark.ingest

BASIC_CODES = {"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
ANONYMIZER_CATEGORIES = {
    "D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

# Justified differences from dicom-anonymizer's copy of the basic column.
ALLOWED_DIFFERENT_ACTION = {
    0x0040A730: ("X", "D", "Content Sequence: we remove it (X) unless "
                 "clean-structured-content is chosen; a dummy (D) content tree "
                 "would be meaningless, and such objects go to quarantine anyway"),
    0x006A0003: ("U", "D", "Annotation Group UID: a keyed UID replacement is a "
                 "non-zero dummy value (D) that also keeps references consistent"),
}
def _only_ours_reasons():
    from pydicom.datadict import tag_for_keyword as t
    return {
        t("ContextGroupExtensionCreatorUID"): "a UID naming the creating organisation "
            "(U); listed by earlier editions of the table",
        t("CreatorVersionUID"): "identifies the creating device and version (U)",
        t("PatientSizeCodeSequence"): "a patient characteristic: X, K with "
            "retain-patient-characteristics, like Patient's Size",
        t("ExpiryDate"): "a date (X); removal is the basic profile's rule for dates",
        t("RequestingPhysicianIdentificationSequence"): "identifies a person (X), "
            "like Requesting Physician",
    }


def _theirs() -> dict[int, str]:
    selector = pytest.importorskip("dicomanonymizer.dicomfields_selector")
    db = selector.dicom_anonymization_database_selector("dicomfields_2026c")
    out = {}
    for category, code in ANONYMIZER_CATEGORIES.items():
        for entry in db[category]:
            if len(entry) == 2:   # masked repeating-group rows are checked separately
                out[entry[0] << 16 | entry[1]] = code
    return out


def _ours() -> dict[int, str]:
    return {r.tag_int: r.basic for r in rules.load_rows() if r.tag_int is not None}


def test_table_is_generated_from_its_source():
    assert build_table.main(["--check"]) == 0


def test_every_cell_holds_a_known_code():
    rows = rules.load_rows()
    assert len(rows) > 600
    for row in rows:
        assert row.basic in BASIC_CODES, row
        for column, code in row.cells.items():
            assert code in ("", "K", "C"), (row.keyword, column, code)


def test_every_option_column_is_used():
    rows = rules.load_rows()
    for column in rules.OPTION_COLUMNS.values():
        assert any(r.cells[column] for r in rows), column


def test_masked_rows_present():
    masks = {r.tag for r in rules.load_rows() if r.tag_int is None}
    assert {"50xx,xxxx", "60xx,3000", "60xx,4000", "gggg,eeee odd group"} <= masks


def test_basic_column_matches_dicom_anonymizer():
    ours, theirs = _ours(), _theirs()
    only_ours = _only_ours_reasons()
    different = {t: (ours[t], theirs[t]) for t in ours.keys() & theirs.keys()
                 if ours[t] != theirs[t]}
    unexplained = {f"{t:08X}": d for t, d in different.items()
                   if ALLOWED_DIFFERENT_ACTION.get(t, (None, None))[:2] != d}
    assert not unexplained, f"actions differ from dicom-anonymizer: {unexplained}"
    missing = sorted(f"{t:08X}:{theirs[t]}" for t in theirs.keys() - ours.keys())
    assert not missing, f"rows in dicom-anonymizer but not in our table: {missing}"
    extra = sorted(f"{t:08X}" for t in ours.keys() - theirs.keys() - only_ours.keys())
    assert not extra, f"rows only in our table, without a reason: {extra}"
    # every allow-list entry is still needed (no stale excuses)
    assert set(ALLOWED_DIFFERENT_ACTION) == set(different)
    assert set(only_ours) == ours.keys() - theirs.keys()
