"""Every input yields an outcome; outputs are valid DICOM with intact pixels."""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files

from spe_ingest.deid import Deidentifier
from spe_ingest.dicomio import parse
from spe_ingest.keys import Keys, domain_key
from spe_ingest.profile import compile_profile

from .conftest import ingest

pytestmark = pytest.mark.ingest

TEST_FILES = sorted(f for f in get_testdata_files() if os.path.isfile(f))


@pytest.fixture(scope="module")
def deid():
    return Deidentifier(compile_profile("basic", []),
                        Keys(domain_key(b"k" * 32, "P", "S")), "S")


def _pixel_bytes(data: bytes) -> bytes | None:
    parsed = parse(data)
    for el in parsed.elems:
        if el.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
            return parsed.buf[el.vstart:el.vend]
    return None


@pytest.mark.parametrize("path", TEST_FILES, ids=[os.path.basename(f) for f in TEST_FILES])
def test_every_pydicom_test_file_has_an_outcome(deid, path):
    data = Path(path).read_bytes()
    res = deid.run(data)
    assert res.outcome in ("accepted", "quarantined", "dropped", "rejected")
    if res.outcome == "rejected":
        assert res.reason
        return
    if res.data is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = pydicom.dcmread(path, force=True)
        out = pydicom.dcmread(__import__("io").BytesIO(res.data))
        list(out.iterall())
    assert out.PatientIdentityRemoved == "YES"
    assert out.file_meta.TransferSyntaxUID == src.file_meta.get(
        "TransferSyntaxUID", out.file_meta.TransferSyntaxUID)
    assert out.SOPClassUID == src.get("SOPClassUID", out.SOPClassUID)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.SOPInstanceUID.startswith("2.25.")
    if "PixelData" in src and out.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.1.99":
        assert _pixel_bytes(res.data) == _pixel_bytes(data), "pixel data must be bit-identical"
    if "PixelData" in src:
        assert out.PixelData == src.PixelData


def test_truncated_zero_byte_and_foreign_files(tmp_path, ct_bytes, key_file):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "zero.dcm").write_bytes(b"")
    (src / "text.txt").write_text("hello, not DICOM at all\n" * 10)
    (src / "random.bin").write_bytes(os.urandom(4096))
    for cut in (100, 140, 400, 1000, len(ct_bytes) // 2, len(ct_bytes) - 3):
        (src / f"cut{cut}.dcm").write_bytes(ct_bytes[:cut])
    (src / "good.dcm").write_bytes(ct_bytes)
    assert ingest(src, dst, key_file) == 0
    report = json.loads((dst / "report.json").read_text())
    assert report["counts"]["inputs"] == 10
    assert report["counts"]["accepted"] == 1
    reasons = report["outcomes"]["rejected"]
    assert sum(reasons.values()) == 9
    # cut at 100 bytes there is no DICM marker yet: not DICOM, like the two others
    assert reasons.get("empty") == 1 and reasons.get("not-dicom") == 3
    assert reasons.get("truncated", 0) + reasons.get("missing-pixel-data", 0) == 5
    # rejected inputs are named by a keyed hash, never by their path
    text = (dst / "report.json").read_text()
    assert "cut100" not in text and "zero.dcm" not in text


def test_whole_pydicom_corpus_through_the_command(tmp_path, key_file):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i, f in enumerate(TEST_FILES):
        shutil.copy(f, src / f"{i:03d}_{os.path.basename(f)}")
    assert ingest(src, dst, key_file, workers=2) == 0
    report = json.loads((dst / "report.json").read_text())
    assert report["counts"]["inputs"] == len(TEST_FILES)
    assert sum(sum(v.values()) for v in report["outcomes"].values()) == len(TEST_FILES)
    assert report["counts"]["accepted"] > 0
    assert not [r for r in report["rejected"] if r["reason"] == "internal-error"]
