"""Generate the benchmark corpus: CT/MR files from pydicom's test data.

Every file gets its own pixel data (the base image with a per-file
perturbation), its own UIDs, and identifiers planted where leaky tools miss
them: top-level, nested sequences, private blocks, free text, and the file
and folder names.  ``planted(corpus)`` lists every planted identifier so the
benchmark can prove that none leaked.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

BASES = ("CT_small.dcm", "MR_small.dcm")
FILES_PER_SERIES = 10
SERIES_PER_STUDY = 2
STUDIES_PER_PATIENT = 2


def _identity(p: int) -> dict:
    return {
        "name": f"ZZQUIXOTE{p:04d}^MARGARETHA{p:04d}",
        "id": f"PIDQX{p:05d}",
        "accession": f"ACCQX{p:05d}",
        "birth": f"19{(p % 80) + 10:02d}0{(p % 9) + 1}1{p % 9}",
        "institution": f"SANKTA QXHOSPITAL {p:03d}",
        "physician": f"DRQXWHO{p:04d}^JOHN",
        "phone": f"+4930{p:07d}",
    }


def build(root: Path, n_files: int = 2000) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    bases = [open(get_testdata_file(b), "rb").read() for b in BASES]
    planted: set[str] = set()
    i = 0
    p = 0
    while i < n_files:
        ident = _identity(p)
        planted.update(ident.values())
        planted.update(ident["name"].split("^"))
        pdir = root / f"{ident['name'].replace('^', '_')}_{ident['id']}"
        for s in range(STUDIES_PER_PATIENT):
            study_uid = pydicom.uid.generate_uid()
            sdir = pdir / f"study_{ident['accession']}_{s}"
            for r in range(SERIES_PER_STUDY):
                series_uid = pydicom.uid.generate_uid()
                rdir = sdir / f"series_{r}"
                rdir.mkdir(parents=True, exist_ok=True)
                for f in range(FILES_PER_SERIES):
                    if i >= n_files:
                        break
                    ds = pydicom.dcmread(io.BytesIO(bases[(p + r) % len(bases)]))
                    _plant(ds, ident, study_uid, series_uid, i)
                    planted.add(ds.SOPInstanceUID)
                    planted.add(study_uid)
                    planted.add(series_uid)
                    name = f"{ident['id']}_{ident['name'].split('^')[0]}_{i:05d}.dcm"
                    ds.save_as(rdir / name, enforce_file_format=True)
                    i += 1
        p += 1
    info = {"files": n_files, "patients": p, "planted": sorted(planted)}
    (root.parent / (root.name + ".planted.json")).write_text(json.dumps(info))
    return info


def _plant(ds: Dataset, ident: dict, study_uid: str, series_uid: str, i: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientName = ident["name"]
    ds.PatientID = ident["id"]
    ds.PatientBirthDate = ident["birth"]
    ds.AccessionNumber = ident["accession"]
    ds.InstitutionName = ident["institution"]
    ds.ReferringPhysicianName = ident["physician"]
    ds.PatientTelephoneNumbers = ident["phone"]
    ds.StudyDescription = f"CT follow-up {ident['name']}"
    ds.ImageComments = f"call {ident['phone']} re {ident['id']}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = i
    other = Dataset()
    other.PatientID = ident["id"] + "X"
    other.IssuerOfPatientID = ident["institution"]
    ds.OtherPatientIDsSequence = Sequence([other])
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = study_uid
    inner = Dataset()
    inner.PatientName = ident["name"]
    ref.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([ref])
    block = ds.private_block(0x0099, "QX PRIVATE", create=True)
    block.add_new(0x01, "LO", ident["id"])
    block.add_new(0x02, "PN", ident["name"])
    arr = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
    arr[: 8] = np.frombuffer(i.to_bytes(8, "little"), dtype=np.uint8)
    ds.PixelData = arr.tobytes()


def planted(root: Path) -> list[str]:
    return json.loads((root.parent / (root.name + ".planted.json")).read_text())["planted"]


# Every planted value matches one of these patterns, so a leak check is one
# regex scan per file followed by an exact lookup (not 2,000 x 3,000 searches).
_FAMILIES = re.compile(
    rb"ZZQUIXOTE\d{4}|MARGARETHA\d{4}|PIDQX\d{5}X?|ACCQX\d{5}|SANKTA QXHOSPITAL \d{3}"
    rb"|DRQXWHO\d{4}|\+4930\d{7}|1\.2\.826\.0\.1\.3680043\.8\.498\.[\d.]+|19\d{6}")


def leaks(out_root: Path, values: list[str]) -> dict:
    """Planted values found in any file's bytes or any path under out_root."""
    wanted = {v.upper().encode() for v in values}
    wanted |= {w.split(b"^")[0] for w in wanted}
    found: dict[str, int] = {}
    for path in out_root.rglob("*"):
        blobs = [str(path.relative_to(out_root)).upper().encode()]
        if path.is_file():
            blobs.append(path.read_bytes().upper())
        for blob in blobs:
            for match in set(_FAMILIES.findall(blob)):
                if match in wanted or match.rstrip(b".") in wanted:
                    key = match.decode()
                    found[key] = found.get(key, 0) + 1
    return found
