"""A dataset volume made the way the Dataset reconciler makes one (``spe_api.datasetvolume``),
by the test itself: ``spe-ingest run`` on the host (DICOM from pydicom's bundled test files,
with identifiers planted) into the directory backing a hostPath PersistentVolume, signed with
the session's dataset signing key, bound to its ingest claim in the operator's namespace
(labels, owner reference), the Dataset's phase Ready."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from spe_ingest import cli as ingest_cli

from tests.fixtures.datasetvolumes import ingest_claim, write_signing_key
from tests.workspace import factories as f

PLANTED_NAME = "Zyxwvut^Quirinalis"
PLANTED_ID = "MRN-93817264"


def dicom_source(root: Path, patients: int = 2, per_patient: int = 2) -> None:
    raw = get_testdata_file("CT_small.dcm")
    for p in range(patients):
        for i in range(per_patient):
            ds = pydicom.dcmread(raw)
            ds.PatientName = f"{PLANTED_NAME}{p}"
            ds.PatientID = f"{PLANTED_ID}{p}"
            ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{p}"
            ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{p}.1"
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{p}.1.{i}"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            path = root / f"p{p}" / f"img{i}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)


def ingest_volume(work: Path) -> Path:
    """``spe-ingest run`` into ``work/volume`` (the volume's root: data/, quarantine/,
    manifest.json, report.json, .spe-ingest/), readable by the workspace's user."""
    src, dst = work / "source", work / "volume"
    dicom_source(src)
    key = work / "pseudonym.key"
    key.write_bytes(os.urandom(48))
    signing = write_signing_key(work)
    rc = ingest_cli.main(["run", str(src), str(dst), "--key-file", str(key), "--site", "SITE-T",
                          "--project", "PROJ-T", "--workers", "1", "--signing-key", str(signing)])
    assert rc == 0, f"spe-ingest run exited {rc}"
    (dst / "quarantine").mkdir(exist_ok=True)
    for dirpath, dirs, files in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    work.chmod(0o755)
    return dst


def make_dataset(kube, name: str, work: Path) -> tuple[Path, list[dict]]:
    """The Dataset, its ingested volume and claim; returns (volume root, objects to delete)."""
    root = ingest_volume(work)
    body = f.dataset(name)
    created = kube.create(body)
    pv, claim = ingest_claim(created, root)
    kube.create(pv)
    kube.create(claim)
    kube.patch_status(body, {"status": {"phase": "Ready"}})
    return root, [body, pv, claim]


def data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root / "data")) for p in (root / "data").rglob("*") if p.is_file())
