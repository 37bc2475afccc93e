"""Fixtures for the ingest tests: small DICOM trees with planted identifiers."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from spe_ingest import cli


@pytest.fixture(scope="session")
def ct_bytes() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


@pytest.fixture(scope="session")
def mr_bytes() -> bytes:
    return Path(get_testdata_file("MR_small.dcm")).read_bytes()


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "key"
    path.write_bytes(bytes(range(64)))
    return path


def dataset_from(raw: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(raw))


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def make_image(raw: bytes, *, patient: str, pid: str, study: str, series: str,
               sop: str, pixel_seed: int, **extra) -> Dataset:
    ds = dataset_from(raw)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientName = patient
    ds.PatientID = pid
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    arr = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
    arr[:4] = np.frombuffer(pixel_seed.to_bytes(4, "little"), dtype=np.uint8)
    ds.PixelData = arr.tobytes()
    for k, v in extra.items():
        setattr(ds, k, v)
    return ds


def write_tree(root: Path, items: list[tuple[str, Dataset]]) -> None:
    for rel, ds in items:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)


def simple_tree(root: Path, raw: bytes, patients: int = 2, per_patient: int = 3,
                uid_root: int = 0, **extra) -> list[Dataset]:
    out = []
    for p in range(patients):
        study = f"1.2.826.0.1.3680043.8.498.{(uid_root + 1) * 100 + p}.1"
        series = f"1.2.826.0.1.3680043.8.498.{p}.1.1"
        for i in range(per_patient):
            ds = make_image(raw, patient=f"Doe{p}^Jane", pid=f"ID{p:04d}", study=study,
                            series=series, sop=f"{series}.{i}",
                            pixel_seed=uid_root * 100000 + p * 1000 + i,
                            **extra)
            out.append(ds)
            write_tree(root, [(f"Doe{p}/ID{p:04d}/img{i}.dcm", ds)])
    return out


def run_cli(*args: str) -> int:
    try:
        return cli.main([str(a) for a in args])
    except SystemExit as exc:      # argparse's own usage errors
        return int(exc.code)


def ingest(src: Path, dst: Path, key: Path, *extra: str, workers: int = 1) -> int:
    return run_cli("run", src, dst, "--key-file", key, "--site", "SITE-A",
                   "--project", "PROJ-1", "--workers", str(workers), *extra)
