"""Embedded image metadata (PNG text chunks and eXIf, JPEG EXIF/XMP/comments, TIFF tags),
data hidden after the image, and PDF metadata and embedded files."""

from __future__ import annotations

import struct
import zlib

import pytest

from spe_egress.checks import CheckContext, CheckPolicy, FileInput, Severity, run_checks

pytestmark = pytest.mark.egress


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png(*extra: bytes, trailer: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(extra)
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"") + trailer)


def tiff_le(entries: list[tuple[int, str]]) -> bytes:
    """A little-endian TIFF structure whose IFD0 holds ASCII tags."""
    head = b"II*\x00" + struct.pack("<I", 8)
    count = len(entries)
    data_start = 8 + 2 + 12 * count + 4
    ifd, data = struct.pack("<H", count), b""
    for tag, text in entries:
        raw = text.encode("latin-1") + b"\x00"
        if len(raw) <= 4:
            ifd += struct.pack("<HHI", tag, 2, len(raw)) + raw.ljust(4, b"\x00")
        else:
            ifd += struct.pack("<HHII", tag, 2, len(raw), data_start + len(data))
            data += raw
    return head + ifd + b"\x00\x00\x00\x00" + data


def jpeg(*segments: bytes, trailer: bytes = b"") -> bytes:
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + b"".join(segments) + sos + b"\x12\x34\x56" + b"\xff\xd9" + trailer


def app(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


JFIF = app(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
W, B, I = Severity.WARN, Severity.BLOCK, Severity.INFO
IMAGE_CASES = [
    # (id, name, bytes, expected [(check, severity, location subset)])
    ("png-clean", "f.png", png(), []),
    ("png-software-only-is-info", "f.png", png(chunk(b"tEXt", b"Software\x00matplotlib version3.8")),
     [("image.metadata", I, {"chunk": "tEXt", "key": "Software"})]),
    ("png-text-author", "f.png", png(chunk(b"tEXt", b"Author\x00Dr Jane Doe")),
     [("image.metadata", W, {"chunk": "tEXt", "key": "Author"}),
      ("identifier.person-name", W, {"chunk": "tEXt", "key": "Author", "start": 3, "end": 11})]),
    ("png-ztxt-with-pseudonym", "f.png", png(chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"case PSN-7f3a91c2"))),
     [("image.metadata", W, {"chunk": "zTXt", "key": "Comment"}),
      ("identifier.pseudonym", B, {"chunk": "zTXt", "key": "Comment", "start": 5, "end": 17})]),
    ("png-itxt-xmp", "f.png", png(chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta/>")),
     [("image.metadata", W, {"chunk": "iTXt", "key": "XMP"})]),
    ("png-exif-chunk", "f.png", png(chunk(b"eXIf", tiff_le([(315, "Jane Doe")]))),
     [("image.metadata", W, {"chunk": "eXIf", "key": "Artist"}),
      ("identifier.person-name", W, {"chunk": "eXIf", "key": "Artist", "start": 0, "end": 8})]),
    ("png-trailing-data", "f.png", png(trailer=b"secret payload"),
     [("image.trailing-data", W, {"chunk": "IEND", "bytes": 14})]),
    ("jpeg-clean-jfif", "f.jpg", jpeg(JFIF), []),
    ("jpeg-exif-artist-and-date", "f.jpg", jpeg(app(0xE1, b"Exif\x00\x00" + tiff_le([(306, "2021:03:14 10:00:00"), (315, "J Doe")]))),
     [("image.metadata", W, {"chunk": "APP1", "key": "DateTime"}), ("image.metadata", W, {"chunk": "APP1", "key": "Artist"})]),
    ("jpeg-xmp", "f.jpg", jpeg(app(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>")),
     [("image.metadata", W, {"chunk": "APP1", "key": "XMP"})]),
    ("jpeg-comment-with-email", "f.jpg", jpeg(app(0xFE, b"by jane@x.org")),
     [("image.metadata", W, {"chunk": "COM", "key": "comment"}),
      ("identifier.email", W, {"chunk": "COM", "key": "comment", "start": 3, "end": 13})]),
    ("jpeg-trailing-data", "f.jpg", jpeg(JFIF, trailer=b"PK\x03\x04hidden zip"),
     [("image.trailing-data", W, {"chunk": "EOI", "bytes": 14})]),
    ("tiff-description", "f.tif", tiff_le([(270, "slice of PSN-7f3a91c2")]),
     [("image.metadata", W, {"chunk": "IFD0", "key": "ImageDescription"}),
      ("identifier.pseudonym", B, {"chunk": "IFD0", "key": "ImageDescription", "start": 9, "end": 21})]),
]


@pytest.mark.parametrize("name,data,expected", [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_image_metadata(name, data, expected):
    policy = CheckPolicy(allowed_types=["png", "jpeg", "tiff"])
    report = run_checks([FileInput(name, data)], policy, CheckContext(pseudonymous_ids={"PSN-7f3a91c2"}))
    got = [f for f in report.files[0].findings if f.check != "image.content"]
    assert [(f.check, f.severity) for f in got] == [(c, s) for c, s, _ in expected]
    for f, (_, _, where) in zip(got, expected):
        assert where.items() <= f.location.items()
    assert [f.check for f in report.files[0].findings].count("image.content") == 1  # pixels: a reviewer's job


def test_gps_in_exif_is_named():
    d = bytearray(tiff_le([(315, "x")]))
    struct.pack_into("<H", d, 10, 34853)  # turn the one tag into GPSInfo
    struct.pack_into("<H", d, 12, 4)
    report = run_checks([FileInput("f.jpg", jpeg(app(0xE1, b"Exif\x00\x00" + bytes(d))))], CheckPolicy())
    (f,) = [f for f in report.files[0].findings if f.check == "image.metadata"]
    assert "GPS" in f.message and f.location == {"chunk": "APP1", "key": "GPSInfo"}


PDF_BASE = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


@pytest.mark.parametrize("extra,expected", [
    (b"", {"document.content": I}),
    (b"2 0 obj\n<< /Author (Jane Doe) /Producer (LaTeX) >>\nendobj\n",
     {"document.content": I, "document.metadata": W, "identifier.person-name": W}),
    (b"3 0 obj\n<< /Type /EmbeddedFile >>\nendobj\n", {"document.content": I, "document.active-content": B}),
    (b"4 0 obj\n<< /S /JavaScript /JS (app.alert(1)) >>\nendobj\n", {"document.content": I, "document.active-content": W}),
], ids=["plain", "author-metadata", "embedded-file", "javascript"])
def test_pdf_checks(extra, expected):
    report = run_checks([FileInput("r.pdf", PDF_BASE + extra + b"%%EOF\n")], CheckPolicy())
    got: dict[str, Severity] = {}
    for f in report.files[0].findings:
        got[f.check] = max(got.get(f.check, f.severity), f.severity, key=lambda s: s.rank)
    assert got == expected
