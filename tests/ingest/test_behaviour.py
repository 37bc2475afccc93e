"""Pseudonyms, UIDs, dates, classification, duplicates, determinism, resume."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest

from spe_ingest import pipeline
from spe_ingest.deid import Deidentifier
from spe_ingest.keys import Keys, domain_key, shift_da
from spe_ingest.profile import compile_profile
from spe_ingest.risk import k_anonymity, qi_record
from spe_ingest.rules import OPTIONS

from .conftest import ingest, make_image, simple_tree, to_bytes, write_tree

pytestmark = pytest.mark.ingest


def _deid(options=(), profile="basic", key=b"k" * 32, site="S", project="P"):
    return Deidentifier(compile_profile(profile, options),
                        Keys(domain_key(key, project, site)), site)


def _run(deid, ds):
    res = deid.run(to_bytes(ds))
    out = pydicom.dcmread(io.BytesIO(res.data)) if res.data else None
    return res, out


def _outputs(dst: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dst)): p.read_bytes()
            for p in sorted(dst.rglob("*")) if p.is_file()
            and p.name not in ("report.json", "journal.jsonl")}


# ---------------------------------------------------------------- keys

def test_pseudonyms_are_keyed_per_project_and_site(ct_bytes):
    ds = make_image(ct_bytes, patient="Doe^J", pid="X1", study="1.2.3", series="1.2.3.4",
                    sop="1.2.3.4.5", pixel_seed=1)
    a = _run(_deid(), ds)[1]
    assert a.PatientID == _run(_deid(), ds)[1].PatientID          # same key: same
    assert a.PatientID != _run(_deid(key=b"z" * 32), ds)[1].PatientID
    assert a.PatientID != _run(_deid(site="S2"), ds)[1].PatientID
    assert a.PatientID != _run(_deid(project="P2"), ds)[1].PatientID
    assert a.PatientName == a.PatientID and len(a.PatientID) == 16


def test_uids_are_2_25_and_references_stay_consistent(ct_bytes):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    deid = _deid()
    one = make_image(ct_bytes, patient="A", pid="1", study="1.2.3", series="1.2.3.4",
                     sop="1.2.3.4.5", pixel_seed=1)
    ref = Dataset()
    ref.ReferencedSOPClassUID = one.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    two = make_image(ct_bytes, patient="A", pid="1", study="1.2.3", series="1.2.3.4",
                     sop="1.2.3.4.6", pixel_seed=2)
    two.ReferencedImageSequence = Sequence([ref])
    a, b = _run(deid, one)[1], _run(deid, two)[1]
    assert a.SOPInstanceUID.startswith("2.25.") and len(a.SOPInstanceUID) <= 64
    assert int(a.SOPInstanceUID[5:]) < 2 ** 128
    assert a.StudyInstanceUID == b.StudyInstanceUID != "1.2.3"
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    kept = _run(_deid(["retain-uids"]), one)[1]
    assert kept.SOPInstanceUID == "1.2.3.4.5"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_retained_uids_cannot_escape_dst(ct_bytes):
    ds = make_image(ct_bytes, patient="A", pid="1", study="../../etc", series="1.2/3",
                    sop="1.2.3.4.5", pixel_seed=1)
    res = _deid(["retain-uids"]).run(to_bytes(ds))
    parts = res.relpath.split("/")
    assert len(parts) == 5 and ".." not in parts
    assert parts[2].startswith("2.25.") and parts[3].startswith("2.25.")
    assert parts[4] == "1.2.3.4.5.dcm"


def test_modified_dates_shift_per_patient_and_keep_intervals(ct_bytes):
    deid = _deid(["retain-longitudinal-modified-dates"])
    a = make_image(ct_bytes, patient="A", pid="P1", study="1.2.3", series="1.2.3.4",
                   sop="1.2.3.4.5", pixel_seed=1, StudyDate="20200110",
                   SeriesDate="20200115", PatientBirthDate="19700101")
    out = _run(deid, a)[1]
    import datetime as dt
    d = lambda s: dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))  # noqa: E731
    assert out.StudyDate != "20200110"
    assert (d(out.SeriesDate) - d(out.StudyDate)).days == 5
    assert (d("20200110") - d(out.StudyDate)).days == (d("19700101") - d(out.PatientBirthDate)).days
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    b = make_image(ct_bytes, patient="B", pid="P2", study="1.2.9", series="1.2.9.4",
                   sop="1.2.9.4.5", pixel_seed=2, StudyDate="20200110")
    assert _run(deid, b)[1].StudyDate != out.StudyDate     # another patient, another shift
    full = _run(_deid(["retain-longitudinal-full-dates"]), a)[1]
    assert full.StudyDate == "20200110"
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    basic = _run(_deid(), a)[1]
    assert basic.StudyDate == "" and "SeriesDate" not in basic or basic.SeriesDate != "20200115"
    assert shift_da("20200301", -1) == "20200229" and shift_da("garbage", 3) is None


# ---------------------------------------------------------------- options

OPTION_EXPECTATIONS = {
    "retain-patient-characteristics": ("PatientAge", "045Y"),
    "retain-device-identity": ("DeviceSerialNumber", "SN-77"),
    "retain-institution-identity": ("InstitutionName", "Klinikum X"),
    "retain-longitudinal-full-dates": ("StudyDate", "20200110"),
    "clean-descriptors": ("SeriesDescription", "axial thorax"),
}


@pytest.mark.parametrize("option", OPTIONS)
def test_option_matrix(ct_bytes, option):
    ds = make_image(ct_bytes, patient="A", pid="P1", study="1.2.3", series="1.2.3.4",
                    sop="1.2.3.4.5", pixel_seed=1, PatientAge="045Y", DeviceSerialNumber="SN-77",
                    InstitutionName="Klinikum X", StudyDate="20200110",
                    SeriesDescription="axial thorax")
    basic = _run(_deid(), ds)[1]
    out = _run(_deid([option]), ds)[1]
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes[0] == "113100" and len(codes) == 2
    assert option in out.DeidentificationMethod
    if option in OPTION_EXPECTATIONS:
        kw, value = OPTION_EXPECTATIONS[option]
        assert out.get(kw) == value
        assert basic.get(kw) in (None, "")
    assert out.PatientIdentityRemoved == "YES"


def test_every_option_together_and_codes(ct_bytes):
    opts = [o for o in OPTIONS if o != "retain-longitudinal-full-dates"]
    ds = make_image(ct_bytes, patient="A", pid="P1", study="1.2.3", series="1.2.3.4",
                    sop="1.2.3.4.5", pixel_seed=1)
    out = _run(_deid(opts), ds)[1]
    codes = {item.CodeValue for item in out.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113101", "113103", "113104", "113105", "113107", "113108",
                     "113109", "113110", "113111", "113112"}
    assert all(item.CodingSchemeDesignator == "DCM"
               for item in out.DeidentificationMethodCodeSequence)


def test_eucaim_profile(ct_bytes):
    ds = make_image(ct_bytes, patient="A", pid="P1", study="1.2.3", series="1.2.3.4",
                    sop="1.2.3.4.5", pixel_seed=1, PatientAge="045Y", PatientSex="F",
                    PatientWeight="71.5", PatientSize="1.68", StudyDate="20200110",
                    InstitutionName="Klinikum X")
    out = _run(_deid(profile="eucaim", site="SITE-A"), ds)[1]
    assert (out.PatientAge, out.PatientSex, out.PatientWeight, out.PatientSize) == \
        ("045Y", "F", 71.5, 1.68)
    assert out.StudyDate == "20200101"
    assert out.InstitutionName == "SITE-A"


def test_safe_private_kept_only_with_the_option(ct_bytes):
    ds = make_image(ct_bytes, patient="A", pid="P1", study="1.2.3", series="1.2.3.4",
                    sop="1.2.3.4.5", pixel_seed=1)
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")
    block.add_new(0x10, "LO", "unsafe")
    plain = _run(_deid(), ds)[1]
    assert not [e for e in plain if e.tag.is_private]
    out = _run(_deid(["retain-safe-private"]), ds)[1]
    kept = {e.tag: e.value for e in out if e.tag.is_private}
    assert len(kept) == 2 and "SIEMENS MR HEADER" in kept.values()
    assert "unsafe" not in kept.values()


# ---------------------------------------------------------------- classification

def test_screenshots_dropped_secondary_captures_and_burned_in_quarantined(
        tmp_path, ct_bytes, key_file):
    src, dst = tmp_path / "src", tmp_path / "dst"
    base = dict(patient="A", pid="P1", study="1.2.3", series="1.2.3.4")
    shot = make_image(ct_bytes, sop="1.2.3.4.1", pixel_seed=1, **base)
    shot.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    sc = make_image(ct_bytes, sop="1.2.3.4.2", pixel_seed=2, **base)
    sc.ImageType = ["DERIVED", "SECONDARY"]
    burned = make_image(ct_bytes, sop="1.2.3.4.3", pixel_seed=3, BurnedInAnnotation="YES", **base)
    good = make_image(ct_bytes, sop="1.2.3.4.4", pixel_seed=4, **base)
    write_tree(src, [("a.dcm", shot), ("b.dcm", sc), ("c.dcm", burned), ("d.dcm", good)])
    assert ingest(src, dst, key_file) == 0
    report = json.loads((dst / "report.json").read_text())
    assert report["outcomes"]["dropped"] == {"screenshot": 1}
    assert report["outcomes"]["quarantined"] == {"burned-in-annotation": 1,
                                                 "secondary-capture": 1}
    quarantined = list((dst / "quarantine").rglob("*.dcm"))
    assert len(quarantined) == 2
    for path in quarantined:       # de-identified like the rest
        q = pydicom.dcmread(path)
        assert q.PatientIdentityRemoved == "YES" and q.PatientID != "P1"
    assert len(list((dst / "data").rglob("*.dcm"))) == 1


def test_pixel_duplicates_reported_and_kept_once(tmp_path, ct_bytes, key_file):
    src, dst = tmp_path / "src", tmp_path / "dst"
    base = dict(patient="A", pid="P1", study="1.2.3", series="1.2.3.4")
    a = make_image(ct_bytes, sop="1.2.3.4.1", pixel_seed=7, **base)
    b = make_image(ct_bytes, sop="1.2.3.4.2", pixel_seed=7, **base)
    c = make_image(ct_bytes, sop="1.2.3.4.3", pixel_seed=8, **base)
    write_tree(src, [("a.dcm", a), ("b.dcm", b), ("c.dcm", c), ("copy/a.dcm", a)])
    assert ingest(src, dst, key_file) == 0
    report = json.loads((dst / "report.json").read_text())
    assert report["outcomes"]["duplicate"] == {"identical-object": 1, "pixel-data": 1}
    assert len(report["duplicates"]) == 1
    assert len(list((dst / "data").rglob("*.dcm"))) == 2
    assert pipeline.mf.verify(dst, None) == []


def test_k_anonymity_bands_and_classes():
    recs = {"p1": qi_record({"age": "045Y", "sex": "F"}),
            "p2": qi_record({"age": "047Y", "sex": "F"}),
            "p3": qi_record({"age": "071Y", "sex": "M"})}
    res = k_anonymity(recs, 2)
    assert res["k"] == 1 and res["refused"]
    assert res["quasi_identifiers"] == ["age", "sex"]
    assert res["classes_below_threshold"] == [{"class": {"age": "70-79", "sex": "M"}, "size": 1}]
    assert not k_anonymity({"p1": qi_record({}), "p2": qi_record({})}, 2)["refused"]


# ---------------------------------------------------------------- runs

def test_determinism_across_runs_and_worker_counts(tmp_path, ct_bytes, mr_bytes, key_file):
    src = tmp_path / "src"
    simple_tree(src, ct_bytes, patients=3, per_patient=3)
    simple_tree(src / "mr", mr_bytes, patients=2, per_patient=2, uid_root=9)
    assert ingest(src, tmp_path / "one", key_file) == 0
    assert ingest(src, tmp_path / "two", key_file, workers=2) == 0
    one, two = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert one == two
    assert len([k for k in one if k.endswith(".dcm")]) == 13


def test_interrupted_run_resumes_without_duplicates(tmp_path, ct_bytes, key_file, monkeypatch):
    src = tmp_path / "src"
    simple_tree(src, ct_bytes, patients=4, per_patient=30)   # 120 files, 3 chunks
    assert ingest(src, tmp_path / "fresh", key_file) == 0

    real = pipeline._process_chunk
    calls = {"n": 0}

    def flaky(chunk):
        calls["n"] += 1
        if calls["n"] == 2:
            # half of this chunk written, then the process dies
            real(chunk[: len(chunk) // 2])
            raise KeyboardInterrupt
        return real(chunk)
    monkeypatch.setattr(pipeline, "_process_chunk", flaky)
    dst = tmp_path / "dst"
    assert ingest(src, dst, key_file) == 1
    assert not (dst / "manifest.json").exists()
    monkeypatch.setattr(pipeline, "_process_chunk", real)
    assert ingest(src, dst, key_file) == 0
    assert _outputs(dst) == _outputs(tmp_path / "fresh")
    report = json.loads((dst / "report.json").read_text())
    assert report["counts"]["accepted"] == 120 and report["counts"]["duplicate"] == 0
    assert not [p for p in dst.rglob(".tmp-*")]
    # and once more: nothing changes
    assert ingest(src, dst, key_file) == 0
    assert _outputs(dst) == _outputs(tmp_path / "fresh")


def test_worker_records_are_small_and_carry_no_data(tmp_path, ct_bytes):
    """Memory stays bounded: workers hand back records, never data sets."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    simple_tree(src, ct_bytes, patients=1, per_patient=3)
    (dst / "data").mkdir(parents=True)
    pipeline._init_worker(compile_profile("basic", []), b"k" * 32, "S", str(src), str(dst))
    rels = sorted(str(p.relative_to(src)) for p in src.rglob("*.dcm"))
    records = pipeline._process_chunk([(f"id{i}", r, "0:0") for i, r in enumerate(rels)])
    assert [r["outcome"] for r in records] == ["accepted"] * 3
    for rec in records:
        assert len(json.dumps(rec)) < 1024
        assert not any(isinstance(v, bytes) for v in rec.values())


def test_progress_only_when_enabled(capsys):
    quiet = pipeline._Progress(False, 10)
    quiet.update(5, final=True)
    assert capsys.readouterr().err == ""
    loud = pipeline._Progress(True, 10)
    loud.update(5, final=True)
    err = capsys.readouterr().err
    assert "5 files" in err and "files/s" in err and "ETA" in err
