"""A small, fast DICOM Part 10 tokenizer and encoder.

The ingest never needs the *values* of most elements, only where they are,
so instead of building pydicom objects for every element it tokenises the
file into ``Elem`` records (tag, VR, byte offsets, nested items) and later
copies the bytes of kept elements verbatim.  Pixel data are never decoded.

Supported: implicit VR little endian, explicit VR little and big endian,
deflated explicit VR little endian, encapsulated (compressed) pixel data,
files with or without preamble/file meta.  Anything else raises
``DicomError`` with a short reason, which the pipeline reports.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .dictionary import vr as dictionary_vr

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"

# VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
LONG_VRS = frozenset(
    b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
VALID_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS "
    b"ST SV TM UC UI UL UN UR US UT UV".split())
UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIM = 0xFFFEE00D
SEQ_DELIM = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010


class DicomError(Exception):
    """The input is not DICOM we can process; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(slots=True)
class Elem:
    tag: int
    vr: bytes
    hstart: int          # first byte of the element header
    vstart: int          # first byte of the value
    vend: int            # one past the value (after delimiters if undefined)
    items: list | None = None   # list[list[Elem]] for sequences
    undefined: bool = False


@dataclass(slots=True)
class Parsed:
    buf: bytes                    # the bytes the offsets refer to (body)
    meta: dict = field(default_factory=dict)   # tag -> raw value bytes
    elems: list = field(default_factory=list)  # top-level Elem list
    ts: str = EXPLICIT_LE
    explicit: bool = True
    little: bool = True
    had_meta: bool = True


_VR_CACHE: dict[int, bytes] = {}


def implicit_vr(tag: int) -> bytes:
    vr = _VR_CACHE.get(tag)
    if vr is None:
        if tag >> 16 & 1:
            vr = b"UN"
        else:
            text = dictionary_vr(tag) or "UN"
            # ambiguous VRs: pick the first; values are copied as bytes anyway
            vr = text.split(" or ")[0][:2].encode() if text else b"UN"
            if vr not in VALID_VRS:
                vr = b"UN"
        _VR_CACHE[tag] = vr
    return vr


class _Reader:
    __slots__ = ("buf", "n", "u16", "u32", "hh", "explicit")

    def __init__(self, buf: bytes, explicit: bool, little: bool):
        self.buf = buf
        self.n = len(buf)
        e = "<" if little else ">"
        self.u16 = struct.Struct(e + "H").unpack_from
        self.u32 = struct.Struct(e + "L").unpack_from
        self.hh = struct.Struct(e + "HH").unpack_from
        self.explicit = explicit

    def dataset(self, pos: int, end: int, in_item: bool) -> tuple[list, int]:
        buf, n, hh, u16, u32 = self.buf, self.n, self.hh, self.u16, self.u32
        explicit = self.explicit
        elems = []
        append = elems.append
        while pos < end:
            if pos + 8 > n:
                raise DicomError("truncated", "element header past end of file")
            g, e = hh(buf, pos)
            tag = g << 16 | e
            if tag == ITEM_DELIM:
                return elems, pos + 8
            if tag == SEQ_DELIM or tag == ITEM:
                raise DicomError("malformed", f"unexpected delimiter at {pos}")
            if explicit:
                vr = buf[pos + 4:pos + 6]
                if vr in LONG_VRS:
                    if pos + 12 > n:
                        raise DicomError("truncated", "element header past end of file")
                    length = u32(buf, pos + 8)[0]
                    vstart = pos + 12
                elif vr in VALID_VRS:
                    length = u16(buf, pos + 6)[0]
                    vstart = pos + 8
                else:
                    raise DicomError("malformed", f"invalid VR {vr!r} at {pos}")
            else:
                length = u32(buf, pos + 4)[0]
                vstart = pos + 8
                vr = implicit_vr(tag)
                if length == UNDEFINED and vr not in (b"SQ", b"OB", b"OW"):
                    vr = b"SQ" if tag != PIXEL_DATA else b"OB"
            if length == UNDEFINED:
                if vr == b"SQ" or (vr == b"UN" and tag != PIXEL_DATA):
                    items, vend = self.sequence(vstart, None, vr == b"UN")
                    append(Elem(tag, b"SQ" if vr == b"SQ" else vr, pos, vstart,
                                vend, items, True))
                else:
                    vend = self.encapsulated(vstart)
                    append(Elem(tag, vr, pos, vstart, vend, None, True))
                pos = vend
                continue
            vend = vstart + length
            if vend > n:
                raise DicomError("truncated", f"value of ({g:04X},{e:04X}) past end of file")
            if vr == b"SQ":
                items, _ = self.sequence(vstart, vend, False)
                append(Elem(tag, vr, pos, vstart, vend, items, False))
            else:
                append(Elem(tag, vr, pos, vstart, vend))
            pos = vend
        if in_item and end == self.n:
            raise DicomError("truncated", "item without delimiter")
        return elems, pos

    def sequence(self, pos: int, end: int | None, as_implicit: bool):
        buf, hh, u32 = self.buf, self.hh, self.u32
        items = []
        saved = self.explicit
        if as_implicit:
            self.explicit = False
        try:
            while True:
                if end is not None and pos >= end:
                    return items, end
                if pos + 8 > self.n:
                    raise DicomError("truncated", "sequence past end of file")
                g, e = hh(buf, pos)
                tag = g << 16 | e
                length = u32(buf, pos + 4)[0]
                if tag == SEQ_DELIM:
                    return items, pos + 8
                if tag != ITEM:
                    raise DicomError("malformed", f"expected item at {pos}")
                if length == UNDEFINED:
                    ds, pos = self.dataset(pos + 8, self.n, True)
                else:
                    iend = pos + 8 + length
                    if iend > self.n:
                        raise DicomError("truncated", "item past end of file")
                    ds, _ = self.dataset(pos + 8, iend, False)
                    pos = iend
                items.append(ds)
        finally:
            self.explicit = saved

    def encapsulated(self, pos: int) -> int:
        hh, u32 = self.hh, self.u32
        while True:
            if pos + 8 > self.n:
                raise DicomError("truncated", "encapsulated pixel data without delimiter")
            g, e = hh(self.buf, pos)
            tag = g << 16 | e
            length = u32(self.buf, pos + 4)[0]
            if tag == SEQ_DELIM:
                return pos + 8
            if tag != ITEM or length == UNDEFINED:
                raise DicomError("malformed", "bad fragment in encapsulated pixel data")
            pos += 8 + length
            if pos > self.n:
                raise DicomError("truncated", "pixel data fragment past end of file")


def _parse_meta(data: bytes, pos: int) -> tuple[dict, int]:
    meta = {}
    n = len(data)
    while pos + 8 <= n:
        g, e = struct.unpack_from("<HH", data, pos)
        if g != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            length = struct.unpack_from("<L", data, pos + 8)[0]
            vstart = pos + 12
        elif vr in VALID_VRS:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            vstart = pos + 8
        else:  # implicit-encoded meta (seen in the wild)
            length = struct.unpack_from("<L", data, pos + 4)[0]
            vstart = pos + 8
        if length == UNDEFINED or vstart + length > n:
            raise DicomError("truncated", "file meta information")
        meta[g << 16 | e] = data[vstart:vstart + length]
        pos = vstart + length
    return meta, pos


def text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip("\x00 ").strip()


def parse(data: bytes) -> Parsed:
    """Tokenise a whole file; raises DicomError."""
    if not data:
        raise DicomError("empty", "zero-byte file")
    if len(data) >= 132 and data[128:132] == b"DICM":
        meta, pos = _parse_meta(data, 132)
        had_meta = True
    elif data[:4] == b"DICM":
        meta, pos = _parse_meta(data, 4)
        had_meta = True
    else:
        meta, pos, had_meta = {}, 0, False
        if len(data) >= 8 and data[0:2] == b"\x02\x00":
            meta, pos = _parse_meta(data, 0)
            had_meta = bool(meta)
    ts = text(meta.get(0x00020010, b""))
    body = data[pos:]
    if not body:
        raise DicomError("truncated", "no data set after file meta")
    if not ts:
        ts = _guess_ts(body)
    if ts == DEFLATED_LE:
        try:
            body = zlib.decompress(body, -15)
        except zlib.error as exc:
            raise DicomError("truncated", f"deflated data set: {exc}") from None
        explicit, little = True, True
    elif ts == IMPLICIT_LE:
        explicit, little = False, True
    elif ts == EXPLICIT_BE:
        explicit, little = True, False
    else:  # every other transfer syntax is explicit VR little endian
        explicit, little = True, True
    reader = _Reader(body, explicit, little)
    try:
        elems, _ = reader.dataset(0, len(body), False)
    except (struct.error, IndexError) as exc:
        raise DicomError("truncated", str(exc)) from None
    return Parsed(body, meta, elems, ts, explicit, little, had_meta)


def _guess_ts(body: bytes) -> str:
    if len(body) < 8:
        raise DicomError("not-dicom", "too short")
    g, e = struct.unpack_from("<HH", body, 0)
    if g & 1 or not 0x0004 <= g <= 0x0040:
        raise DicomError("not-dicom", "no DICM marker and no plausible first element")
    if body[4:6] in VALID_VRS:
        return EXPLICIT_LE
    if struct.unpack_from("<L", body, 4)[0] > len(body):
        raise DicomError("not-dicom", "no DICM marker and no plausible first element")
    return IMPLICIT_LE


# ---------------------------------------------------------------- encoding

class Encoder:
    """Encodes new elements in the data set's own transfer syntax."""

    __slots__ = ("explicit", "hh", "u16", "u32")

    def __init__(self, explicit: bool, little: bool):
        e = "<" if little else ">"
        self.explicit = explicit
        self.hh = struct.Struct(e + "HH").pack
        self.u16 = struct.Struct(e + "H").pack
        self.u32 = struct.Struct(e + "L").pack

    def element(self, tag: int, vr: bytes, value: bytes) -> bytes:
        if len(value) & 1:
            value += b"\x00" if vr in (b"UI", b"OB", b"UN") else b" "
        head = self.hh(tag >> 16, tag & 0xFFFF)
        if not self.explicit:
            return head + self.u32(len(value)) + value
        if vr in LONG_VRS:
            return head + vr + b"\x00\x00" + self.u32(len(value)) + value
        if len(value) > 0xFFFF:
            value = value[:0xFFFE]
        return head + vr + self.u16(len(value)) + value

    def sequence(self, tag: int, items: list[bytes]) -> bytes:
        head = self.hh(tag >> 16, tag & 0xFFFF)
        if self.explicit:
            head += b"SQ\x00\x00"
        out = [head, self.u32(UNDEFINED)]
        item_head = self.hh(0xFFFE, 0xE000) + self.u32(UNDEFINED)
        item_end = self.hh(0xFFFE, 0xE00D) + self.u32(0)
        for body in items:
            out += (item_head, body, item_end)
        out.append(self.hh(0xFFFE, 0xE0DD) + self.u32(0))
        return b"".join(out)


def meta_element(tag: int, vr: bytes, value: bytes) -> bytes:
    if len(value) & 1:
        value += b"\x00" if vr in (b"UI", b"OB") else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if vr in LONG_VRS:
        return head + vr + b"\x00\x00" + struct.pack("<L", len(value)) + value
    return head + vr + struct.pack("<H", len(value)) + value


def file_bytes(sop_class: str, sop_instance: str, ts: str, body: bytes,
               impl_uid: str, impl_name: str) -> bytes:
    """Preamble, a fresh file meta group, then the (re-deflated) body."""
    elems = b"".join((
        meta_element(0x00020001, b"OB", b"\x00\x01"),
        meta_element(0x00020002, b"UI", sop_class.encode()),
        meta_element(0x00020003, b"UI", sop_instance.encode()),
        meta_element(0x00020010, b"UI", ts.encode()),
        meta_element(0x00020012, b"UI", impl_uid.encode()),
        meta_element(0x00020013, b"SH", impl_name.encode()),
    ))
    group_len = meta_element(0x00020000, b"UL", struct.pack("<L", len(elems)))
    if ts == DEFLATED_LE:
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = comp.compress(body) + comp.flush()
    return b"\x00" * 128 + b"DICM" + group_len + elems + body
