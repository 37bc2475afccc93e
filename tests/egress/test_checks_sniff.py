"""Content sniffing by magic bytes and the file-level checks (type, size, name mismatch)."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from spe_egress.checks import CheckPolicy, FileInput, Severity, run_checks, sniff

pytestmark = pytest.mark.egress


def dicom_bytes() -> bytes:
    with open(get_testdata_file("CT_small.dcm"), "rb") as fh:
        return fh.read()


def implicit_dicom_without_preamble() -> bytes:
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    ds.StudyDate = "20200101"
    ds.Modality = "CT"
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return buf.getvalue()


def nifti1(magic: bytes = b"n+1\x00") -> bytes:
    head = bytearray(352)
    struct.pack_into("<i", head, 0, 348)
    head[344:348] = magic
    return bytes(head) + b"\x00" * 64


def nifti2() -> bytes:
    head = bytearray(544)
    struct.pack_into("<i", head, 0, 540)
    head[4:12] = b"n+2\x00\r\n\x1a\n"
    return bytes(head)


def analyze() -> bytes:
    head = bytearray(348)
    struct.pack_into(">i", head, 0, 348)
    head[38:39] = b"r"
    return bytes(head)


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def tar_of(entries: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(10))
    return buf.getvalue()


def npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3), b=np.ones(2))
    return buf.getvalue()


def safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 8


def onnx() -> bytes:
    def field(number: int, payload: bytes) -> bytes:
        return bytes([(number << 3) | 2, len(payload)]) + payload
    return b"\x08\x07" + field(2, b"pytorch") + field(3, b"2.1") + field(7, b"\x0a\x03abc") + field(8, b"\x10\x11")


def pe() -> bytes:
    d = bytearray(256)
    d[0:2] = b"MZ"
    struct.pack_into("<I", d, 0x3C, 0x80)
    d[0x80:0x84] = b"PE\x00\x00"
    return bytes(d)


def png_min() -> bytes:
    import zlib
    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


SNIFF_CASES = [
    # (id, bytes, expected type, expected family)
    ("dicom-part10", dicom_bytes(), "dicom", "medical-image"),
    ("dicom-explicit-no-preamble", dicom_bytes()[132:], "dicom", "medical-image"),
    ("dicom-implicit-no-preamble", implicit_dicom_without_preamble(), "dicom", "medical-image"),
    ("dicom-gzipped", gzip.compress(dicom_bytes()), "dicom", "medical-image"),
    ("nifti1-single", nifti1(), "nifti", "medical-image"),
    ("nifti1-pair-header", nifti1(b"ni1\x00"), "nifti", "medical-image"),
    ("nifti2", nifti2(), "nifti", "medical-image"),
    ("nifti-gz", gzip.compress(nifti1()), "nifti", "medical-image"),
    ("analyze", analyze(), "analyze", "medical-image"),
    ("zip", zip_of({"a.txt": b"hello"}), "zip", "archive"),
    ("gzip", gzip.compress(b"hello world"), "gzip", "archive"),
    ("tar", tar_of({"a.txt": b"hello"}), "tar", "archive"),
    ("tar-gz", tar_of({"a.txt": b"hello"}, "w:gz"), "gzip", "archive"),
    ("bz2", bz2.compress(b"hello"), "bz2", "archive"),
    ("xz", lzma.compress(b"hello"), "xz", "archive"),
    ("7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "7z", "archive"),
    ("rar", b"Rar!\x1a\x07\x01\x00" + b"\x00" * 24, "rar", "archive"),
    ("pickle-2", pickle.dumps({"a": [1, 2]}, protocol=2), "pickle", "pickle"),
    ("pickle-5", pickle.dumps({"a": [1, 2]}, protocol=5), "pickle", "pickle"),
    ("pickle-0", pickle.dumps({"a": 1}, protocol=0), "pickle", "pickle"),
    ("pytorch-zip", zip_of({"model/data.pkl": pickle.dumps({}), "model/data/0": b"\x00" * 8}), "pytorch", "model"),
    ("npy", npy(), "npy", "model"),
    ("npz", npz(), "npz", "model"),
    ("safetensors", safetensors(), "safetensors", "model"),
    ("hdf5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64, "hdf5", "model"),
    ("onnx", onnx(), "onnx", "model"),
    ("elf", b"\x7fELF\x02\x01\x01" + b"\x00" * 57, "elf", "executable"),
    ("pe", pe(), "pe", "executable"),
    ("macho", b"\xcf\xfa\xed\xfe" + b"\x00" * 28, "macho", "executable"),
    ("shebang", b"#!/bin/sh\ncurl http://x\n", "script", "executable"),
    ("png", png_min(), "png", "image"),
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9", "jpeg", "image"),
    ("tiff", b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00", "tiff", "image"),
    ("pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "pdf", "document"),
    ("office", zip_of({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"}), "office", "document"),
    # false-positive guards: text that starts like a binary format stays text
    ("text-starting-MZ", b"MZ,count\nA,12\nB,40\n" + b"C,11\n" * 20, "txt", "text"),
    ("text-starting-BM", b"BMI,n\nlow,12\nhigh,40\n", "txt", "text"),
    ("json-object", b'{"auc": 0.91, "n": 120}', "json", "text"),
    ("html", b"<!DOCTYPE html><html><body>Hi</body></html>", "html", "text"),
    ("binary-noise", bytes(range(256)) * 4, "binary", "binary"),
    ("empty", b"", "empty", "empty"),
]


@pytest.mark.parametrize("data,kind,family", [c[1:] for c in SNIFF_CASES], ids=[c[0] for c in SNIFF_CASES])
def test_sniff_by_magic_bytes(data, kind, family):
    s = sniff(data)
    assert (s.type, s.family) == (kind, family)


def test_text_type_comes_from_extension_only_for_text():
    assert sniff(b"a\tb\n1\t2\n", "tsv").type == "tsv"
    assert sniff(b"a,b\n1,2\n", "csv").type == "csv"
    assert sniff(b"echo hi\n", "sh").family == "executable"


def _checks(report) -> dict[str, Severity]:
    return {f.check: f.severity for f in report.files[0].findings}


FILETYPE_CASES = [
    # (id, name, data, check expected, severity expected)
    ("dicom-named-png", "figure.png", dicom_bytes(), "file.medical-image", Severity.BLOCK),
    ("dicom-named-png-mismatch", "figure.png", dicom_bytes(), "file.type-mismatch", Severity.WARN),
    ("nifti-gz-named-csv", "table.csv", gzip.compress(nifti1()), "file.medical-image", Severity.BLOCK),
    ("pickle-named-txt", "notes.txt", pickle.dumps([1, 2, 3], protocol=4), "file.type-not-allowed", Severity.BLOCK),
    ("pickle-named-txt-mismatch", "notes.txt", pickle.dumps([1, 2, 3], protocol=4), "file.type-mismatch", Severity.WARN),
    ("zip-not-allowed", "results.zip", zip_of({"a.csv": b"a,b\n"}), "file.type-not-allowed", Severity.BLOCK),
    ("weights-not-allowed", "model.safetensors", safetensors(), "file.type-not-allowed", Severity.BLOCK),
    ("elf-named-csv", "data.csv", b"\x7fELF\x02\x01\x01" + b"\x00" * 57, "file.type-not-allowed", Severity.BLOCK),
    ("script", "run.sh", b"#!/bin/bash\necho\n", "file.type-not-allowed", Severity.BLOCK),
    ("tiff-not-in-default-list", "fig.tif", b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00", "file.type-not-allowed", Severity.BLOCK),
]


@pytest.mark.parametrize("name,data,check,severity", [c[1:] for c in FILETYPE_CASES], ids=[c[0] for c in FILETYPE_CASES])
def test_file_level_findings(name, data, check, severity):
    found = _checks(run_checks([FileInput(name, data)], CheckPolicy()))
    assert found.get(check) is severity, found


def test_allowed_plain_files_have_no_file_findings():
    report = run_checks([FileInput("a.csv", b"model,auc\nresnet,0.91\n"), FileInput("fig.png", png_min()),
                         FileInput("r.json", b'{"auc": 0.91}')], CheckPolicy())
    for f in report.files:
        assert not [x for x in f.findings if x.check.startswith("file.")], f.findings


def test_size_limit_blocks_and_total_limit_applies_to_request():
    policy = CheckPolicy(max_file_bytes=100, max_total_bytes=150)
    report = run_checks([FileInput("a.txt", b"x" * 101), FileInput("b.txt", b"y" * 90)], policy)
    assert _checks(report)["file.size"] is Severity.BLOCK
    assert "file.size" not in {f.check for f in report.files[1].findings}
    assert [f.check for f in report.findings] == ["request.size"]
    assert report.verdict == "block"


def test_dicom_blocked_even_if_policy_lists_it():
    found = _checks(run_checks([FileInput("x.dcm", dicom_bytes())], CheckPolicy(allowed_types=["dicom", "nifti"])))
    assert found["file.medical-image"] is Severity.BLOCK
    assert "file.type-mismatch" not in found


def test_allowed_opaque_family_is_a_warning_not_a_pass():
    found = _checks(run_checks([FileInput("m.onnx", onnx())], CheckPolicy(allowed_types=["model"])))
    assert found == {"file.opaque": Severity.WARN}


def test_archive_note_mentions_dicom_entries():
    report = run_checks([FileInput("r.zip", zip_of({"a/1.dcm": b"x", "a/2.dcm": b"y"}))], CheckPolicy())
    assert "2 of them named like DICOM/NIfTI" in report.files[0].findings[0].message
