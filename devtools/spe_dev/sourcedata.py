"""Example source data for Datasets: DICOM files built from pydicom's bundled test images
(CT_small.dcm, MR_small.dcm), one study per patient, each instance with its own pixels (the
ingest drops pixel duplicates) and identifiers that de-identification must remove.

Patients fall into quasi-identifier classes (sex, age band), so a source meets a k threshold
(``classes`` of ``patients // classes`` each) or misses it on purpose (``lonely``: one more
patient alone in a class of its own). Also the example Datasets' source claims and Secrets
(``examples/dataset-*.yaml``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydicom.data import get_testdata_file

# (sex, age) of each class: one decade band each, so classes stay distinct after generalisation.
CLASSES = [("M", "064Y"), ("F", "052Y"), ("M", "071Y"), ("F", "045Y")]
LONELY = ("O", "033Y")


@dataclass(frozen=True)
class SourceSpec:
    patients: int = 12
    per_patient: int = 2
    classes: int = 2
    lonely: bool = False
    modality: str = "CT"

    @property
    def files(self) -> int:
        return (self.patients + (1 if self.lonely else 0)) * self.per_patient


def _template(modality: str) -> pydicom.Dataset:
    name = "CT_small.dcm" if modality == "CT" else "MR_small.dcm"
    return pydicom.dcmread(get_testdata_file(name))


def write_source(root: Path, spec: SourceSpec, *, uid_root: int = 1) -> list[str]:
    """Write the files under ``root``; returns the planted patient names (must never leak)."""
    template = _template(spec.modality)
    buf = io.BytesIO()
    template.save_as(buf, enforce_file_format=True)
    raw = buf.getvalue()
    people = [(p, CLASSES[p % spec.classes]) for p in range(spec.patients)]
    if spec.lonely:
        people.append((spec.patients, LONELY))
    names = []
    for p, (sex, age) in people:
        name = f"Testpatient{uid_root}x{p}^Anna"
        names.append(name)
        study = f"1.2.826.0.1.3680043.8.498.{uid_root}.{p}.1"
        series = f"{study}.1"
        for i in range(spec.per_patient):
            ds = pydicom.dcmread(io.BytesIO(raw))
            ds.PatientName, ds.PatientID = name, f"MRN{uid_root:03d}{p:05d}"
            ds.PatientSex, ds.PatientAge = sex, age
            ds.PatientBirthDate = "19600101"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = f"{series}.{i + 1}"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            pixels = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
            pixels[:8] = np.frombuffer((uid_root * 10_000_000 + p * 1000 + i).to_bytes(8, "little"), dtype=np.uint8)
            ds.PixelData = pixels.tobytes()
            path = root / f"{name.split('^')[0]}" / f"img{i:03d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return names


def signing_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_key_pem(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# What examples/dataset-*.yaml expect to find: (claim, path in it, source) per example.
EXAMPLE_SOURCES = {
    "prostate-mr": ("pacs-export-prostate", "/exports/2024-10-prostate-bpmri",
                    SourceSpec(patients=12, per_patient=2, classes=2, modality="MR")),
    "lung-ct": ("pacs-export-lung", "/exports/2024-09-lung-screening",
                SourceSpec(patients=20, per_patient=1, classes=2, modality="CT")),
}
# The example Secrets: (name, {key: value}) — the keys the examples name.
EXAMPLE_PSEUDONYM_KEYS = {"pseudonym-key-radboudumc": "blake2b-key", "pseudonym-key-umcg": "key"}
EXAMPLE_SIGNING_SECRET = "dataset-signing-key"
EXAMPLE_SIGNING_KEYS = ("ed25519.pem", "key")
