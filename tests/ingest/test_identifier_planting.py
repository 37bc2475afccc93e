"""Identifiers planted everywhere must appear nowhere under DST.

Values go into many attributes, nested sequences three deep, private blocks
(including a private sequence), free text, overlays and curves, and into the
file and folder names of SRC.  After a run, every byte of every file under
DST (objects, manifest, report, journal) and every path is searched.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .conftest import ingest, make_image, write_tree

pytestmark = pytest.mark.ingest

IDS = {
    "name": "Quaxley^Wilhelmina",
    "id": "MRN7741235",
    "other_id": "ALT99812",
    "accession": "ACC55120",
    "birth": "19610714",
    "institution": "St Quirinus Klinikum",
    "address": "Quaxstrasse 17 Kleinstadt",
    "phone": "+49301234567",
    "physician": "Oldenburgh^Kasimir",
    "operator": "Tech^Ottilie",
    "station": "CTSTATIONQX9",
    "serial": "SERIALQX9931",
    "mother": "Quaxley^Brunhilde",
}
FOLDER = f"{IDS['name'].replace('^', '_')}_{IDS['id']}"
UIDS = ["1.2.826.0.1.3680043.8.498.777.1", "1.2.826.0.1.3680043.8.498.777.1.1",
        "1.2.826.0.1.3680043.8.498.777.1.1.1"]


def _needles() -> list[str]:
    values = set(IDS.values())
    for v in list(values):
        values.update(p for p in v.replace("^", " ").split() if len(p) >= 5)
    values.update({"Quaxley", "Wilhelmina", FOLDER, "secretscan"})
    values.update(UIDS)
    return sorted(values)


def _planted_dataset(raw: bytes) -> Dataset:
    ds = make_image(raw, patient=IDS["name"], pid=IDS["id"], study=UIDS[0],
                    series=UIDS[1], sop=UIDS[2], pixel_seed=1)
    ds.PatientBirthDate = IDS["birth"]
    ds.AccessionNumber = IDS["accession"]
    ds.OtherPatientIDs = IDS["other_id"]
    ds.PatientMotherBirthName = IDS["mother"]
    ds.InstitutionName = IDS["institution"]
    ds.InstitutionAddress = IDS["address"]
    ds.PatientAddress = IDS["address"]
    ds.PatientTelephoneNumbers = IDS["phone"]
    ds.ReferringPhysicianName = IDS["physician"]
    ds.OperatorsName = IDS["operator"]
    ds.StationName = IDS["station"]
    ds.DeviceSerialNumber = IDS["serial"]
    ds.StudyDescription = f"Follow-up of {IDS['name']} MRN {IDS['id']}"
    ds.SeriesDescription = f"axial {IDS['birth']} {IDS['institution']}"
    ds.ImageComments = f"call {IDS['phone']} ask for Wilhelmina"
    ds.StudyID = IDS["accession"]
    ds.AdditionalPatientHistory = f"mother {IDS['mother']}"
    # nested three deep, in a sequence the allow-list keeps
    inner = Dataset()
    inner.PatientName = IDS["name"]
    inner.PatientID = IDS["id"]
    inner.TextValue = f"seen by {IDS['physician']}"
    middle = Dataset()
    middle.ContentSequence = Sequence([inner])
    middle.ReferencedSOPInstanceUID = UIDS[2]
    outer = Dataset()
    outer.ReferencedSOPClassUID = ds.SOPClassUID
    outer.ReferencedSOPInstanceUID = UIDS[1]
    outer.PurposeOfReferenceCodeSequence = Sequence([middle])
    ds.ReferencedImageSequence = Sequence([outer])
    other = Dataset()
    other.PatientID = IDS["other_id"]
    other.IssuerOfPatientID = IDS["institution"]
    ds.OtherPatientIDsSequence = Sequence([other])
    req = Dataset()
    req.RequestedProcedureID = IDS["accession"]
    req.ScheduledProcedureStepDescription = IDS["name"]
    ds.RequestAttributesSequence = Sequence([req])
    # private block with a private sequence
    block = ds.private_block(0x0029, "QX SECRET", create=True)
    block.add_new(0x10, "LO", IDS["id"])
    block.add_new(0x11, "PN", IDS["name"])
    priv_item = Dataset()
    priv_item.PatientName = IDS["name"]
    block.add_new(0x12, "SQ", Sequence([priv_item]))
    ds.add_new(0x00291200, "UN", b"secretscan " + IDS["id"].encode())
    # overlay comments and data, curve data
    ds.add_new(0x60004000, "LT", f"overlay by {IDS['operator']}")
    ds.add_new(0x60003000, "OW", IDS["id"].encode() * 2)
    ds.add_new(0x50003000, "OB", IDS["name"].encode() + b"\x00")
    return ds


def _scan(dst: Path) -> list[str]:
    needles = [n.upper().encode() for n in _needles()]
    hits = []
    for dirpath, dirs, names in os.walk(dst):
        for name in dirs + names:
            up = name.upper().encode()
            hits += [f"path {name}: {n.decode()}" for n in needles if n in up]
        for name in names:
            blob = (Path(dirpath) / name).read_bytes().upper()
            hits += [f"{name}: {n.decode()}" for n in needles if n in blob]
    return hits


OPTION_SETS = {
    "basic": [],
    "clean": ["--option", "clean-descriptors", "--option", "clean-structured-content",
              "--option", "clean-graphics"],
    "modified-dates": ["--option", "retain-longitudinal-modified-dates",
                       "--option", "retain-patient-characteristics"],
    "eucaim": ["--profile", "eucaim"],
}


@pytest.mark.parametrize("name,workers", [(n, 1) for n in OPTION_SETS] + [("basic", 2)])
def test_no_planted_identifier_reaches_dst(tmp_path, ct_bytes, key_file, name, workers):
    src, dst = tmp_path / "src", tmp_path / "dst"
    ds = _planted_dataset(ct_bytes)
    write_tree(src, [(f"{FOLDER}/{IDS['accession']}/{IDS['name']}.dcm", ds)])
    # a broken file whose name carries identifiers: reported, not named
    (src / FOLDER / f"{IDS['id']}_broken.dcm").write_bytes(b"not dicom " + IDS["id"].encode())
    assert ingest(src, dst, key_file, *OPTION_SETS[name], workers=workers) == 0
    out = list((dst / "data").rglob("*.dcm"))
    assert len(out) == 1
    assert _scan(dst) == []


def test_planted_identifiers_are_found_by_the_scan(tmp_path, ct_bytes):
    """The scan itself must catch a leak (so the test above can fail)."""
    src = tmp_path / "src"
    write_tree(src, [(f"{FOLDER}/x.dcm", _planted_dataset(ct_bytes))])
    hits = _scan(src)
    assert any(h.startswith("path ") for h in hits)
    assert any("MRN7741235" in h for h in hits if not h.startswith("path "))


def test_retained_options_keep_what_they_name(tmp_path, ct_bytes, key_file):
    import pydicom
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_tree(src, [("a/b.dcm", _planted_dataset(ct_bytes))])
    assert ingest(src, dst, key_file, "--option", "retain-institution-identity",
                  "--option", "retain-device-identity") == 0
    out = pydicom.dcmread(next((dst / "data").rglob("*.dcm")))
    assert out.InstitutionName == IDS["institution"]
    assert out.StationName == IDS["station"]
    assert out.DeviceSerialNumber == IDS["serial"]
    assert out.PatientID != IDS["id"]
    assert "PatientAddress" not in out
