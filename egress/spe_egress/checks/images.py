"""Embedded metadata in images: PNG text chunks and eXIf, JPEG EXIF/XMP/IPTC/comments,
TIFF tags, and bytes hidden after the image's end; and images used as data carriers
(:mod:`.carrier`: degenerate geometry, pixel bytes that are another file, random pixels).
What the pixels show is not analysed (a reviewer looks at them); every image gets an INFO
finding that says so.

Locations: ``{"chunk": <PNG chunk type | JPEG segment | "IFD0">, "key": <keyword or tag>}``,
plus ``start``/``end`` into the decoded metadata text for identifiers found inside it.
"""

from __future__ import annotations

import struct
import zlib
from typing import AbstractSet

from .carrier import check_pixels
from .identifiers import find_identifiers
from .model import Finding, Severity

META = "image.metadata"
_BENIGN_PNG_KEYS = {"software"}  # matplotlib, PIL: the program's name only
_TAG_NAMES = {
    270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software", 306: "DateTime", 315: "Artist",
    700: "XMP", 33432: "Copyright", 33723: "IPTC", 34665: "ExifIFD", 34853: "GPSInfo", 37510: "UserComment",
    36867: "DateTimeOriginal", 42016: "ImageUniqueID", 40091: "XPTitle", 40092: "XPComment",
    40093: "XPAuthor", 42032: "CameraOwnerName", 42033: "BodySerialNumber",
}
_TEXT_TAGS = {270, 305, 306, 315, 33432, 42016, 42032, 42033, 271, 272}
_MAX_TEXT = 1 << 20


def check_image(kind: str, data: bytes, ids: AbstractSet[str]) -> list[Finding]:
    findings = [Finding("image.content", Severity.INFO,
                        "What the image shows is not checked automatically (only whether its pixels carry data). "
                        "Look for burned-in patient details, annotations, faces or screenshots of records before "
                        "approving.")]
    findings += check_pixels(kind, data)
    if kind == "png":
        findings += _png(data, ids)
    elif kind == "jpeg":
        findings += _jpeg(data, ids)
    elif kind == "tiff":
        findings += _tiff_findings(data, "IFD0", ids)
    return findings


def _meta(key: str, chunk: str, text: str, ids: AbstractSet[str], benign: bool = False) -> list[Finding]:
    shown = text if len(text) <= 80 else text[:77] + "..."
    out = [Finding(META, Severity.INFO if benign else Severity.WARN,
                   f"The image carries embedded metadata '{key}' ({chunk}): '{shown}'. Metadata can hold names, "
                   "dates, devices or file paths; strip it (e.g. save the figure without metadata).",
                   {"chunk": chunk, "key": key})]
    for hit in find_identifiers(text, ids):
        out.append(Finding(hit.check, hit.severity, hit.message + f" (in the image's '{key}' metadata)",
                           {"chunk": chunk, "key": key, "start": hit.start, "end": hit.end}))
    return out


def _trailing(extra: int, where: str) -> Finding:
    return Finding("image.trailing-data", Severity.WARN,
                   f"{extra} bytes follow the end of the image ({where}). Data hidden after an image is not "
                   "shown by viewers; remove it or explain it.", {"chunk": where, "key": None, "bytes": extra})


# ------------------------------------------------------------------ PNG
def _png(d: bytes, ids: AbstractSet[str]) -> list[Finding]:
    out: list[Finding] = []
    pos = 8
    while pos + 8 <= len(d):
        (length,) = struct.unpack_from(">I", d, pos)
        ctype = d[pos + 4:pos + 8].decode("latin-1")
        body = d[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == "tEXt":
            key, _, text = body.partition(b"\x00")
            out += _meta(key.decode("latin-1"), ctype, text.decode("latin-1"), ids,
                         benign=key.decode("latin-1").lower() in _BENIGN_PNG_KEYS)
        elif ctype == "zTXt":
            key, _, rest = body.partition(b"\x00")
            out += _meta(key.decode("latin-1"), ctype, _inflate(rest[1:]).decode("latin-1"), ids)
        elif ctype == "iTXt":
            key, _, rest = body.partition(b"\x00")
            compressed = rest[:1] == b"\x01"
            _lang, _, rest = rest[2:].partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            raw = _inflate(text) if compressed else text
            name = key.decode("latin-1")
            out += _meta("XMP" if name == "XML:com.adobe.xmp" else name, ctype, raw.decode("utf-8", "replace"), ids)
        elif ctype == "eXIf":
            out += _tiff_findings(body, "eXIf", ids)
        elif ctype == "IEND":
            if len(d) - pos > 0:
                out.append(_trailing(len(d) - pos, "IEND"))
            break
    return out


def _inflate(b: bytes) -> bytes:
    try:
        return zlib.decompressobj().decompress(b, _MAX_TEXT)
    except zlib.error:
        return b""


# ------------------------------------------------------------------ JPEG
def _jpeg(d: bytes, ids: AbstractSet[str]) -> list[Finding]:
    out: list[Finding] = []
    pos = 2
    while pos + 4 <= len(d) and d[pos] == 0xFF:
        marker = d[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", d, pos + 2)
        body = d[pos + 4:pos + 2 + length]
        pos += 2 + length
        seg = f"APP{marker - 0xE0}" if 0xE0 <= marker <= 0xEF else ("COM" if marker == 0xFE else None)
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            out += _tiff_findings(body[6:], "APP1", ids)
        elif marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
            out += _meta("XMP", "APP1", body[29:].decode("utf-8", "replace"), ids)
        elif marker == 0xFE:
            out += _meta("comment", "COM", body.decode("utf-8", "replace"), ids)
        elif marker == 0xED:
            out += _meta("Photoshop/IPTC", "APP13", body[:200].decode("latin-1"), ids)
        elif seg and marker not in (0xE0, 0xE2, 0xEE):  # JFIF, ICC profile, Adobe colour: no personal data
            out.append(Finding(META, Severity.INFO, f"The image has an application segment {seg}; it was not "
                               "decoded.", {"chunk": seg, "key": None}))
        if marker == 0xDA:  # start of scan: entropy-coded data follows up to EOI
            end = d.rfind(b"\xff\xd9")
            if end != -1 and len(d) - (end + 2) > 0:
                out.append(_trailing(len(d) - end - 2, "EOI"))
            break
    return out


# ------------------------------------------------------------------ TIFF / EXIF
def tiff_tags(d: bytes) -> dict[int, bytes | str]:
    """Tags of IFD0 (and the Exif sub-IFD) of a TIFF structure: ASCII values decoded,
    others as empty bytes (only their presence matters here)."""
    if len(d) < 8 or d[:2] not in (b"II", b"MM"):
        return {}
    e = "<" if d[:2] == b"II" else ">"
    tags: dict[int, bytes | str] = {}

    def ifd(offset: int, depth: int) -> None:
        if depth > 2 or offset + 2 > len(d):
            return
        (count,) = struct.unpack_from(e + "H", d, offset)
        for i in range(min(count, 512)):
            p = offset + 2 + 12 * i
            if p + 12 > len(d):
                return
            tag, typ, n, value = struct.unpack_from(e + "HHII", d, p)
            if typ == 2:  # ASCII
                raw = d[p + 8:p + 8 + n] if n <= 4 else d[value:value + min(n, _MAX_TEXT)]
                tags[tag] = raw.split(b"\x00", 1)[0].decode("latin-1")
            else:
                tags[tag] = b""
            if tag == 34665 and typ in (4, 13):
                ifd(value, depth + 1)

    ifd(struct.unpack_from(e + "I", d, 4)[0], 0)
    return tags


def _tiff_findings(d: bytes, chunk: str, ids: AbstractSet[str]) -> list[Finding]:
    tags = tiff_tags(d)
    out: list[Finding] = []
    named = {t: v for t, v in tags.items() if t in _TAG_NAMES}
    for tag, value in sorted(named.items()):
        name = _TAG_NAMES[tag]
        if isinstance(value, str) and tag in _TEXT_TAGS:
            out += _meta(name, chunk, value, ids, benign=tag == 305)
        elif tag == 34853:
            out.append(Finding(META, Severity.WARN, "The image carries GPS coordinates (EXIF GPSInfo). They "
                               "can reveal where it was taken; strip the metadata.", {"chunk": chunk, "key": name}))
        elif tag != 34665:
            out.append(Finding(META, Severity.WARN, f"The image carries embedded metadata '{name}' ({chunk}); "
                               "strip it before export.", {"chunk": chunk, "key": name}))
    if chunk != "IFD0" and not out:
        out.append(Finding(META, Severity.WARN, "The image carries an EXIF block; strip it before export.",
                           {"chunk": chunk, "key": "Exif"}))
    return out
