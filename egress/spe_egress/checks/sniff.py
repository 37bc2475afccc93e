"""Content sniffing by magic bytes: what a file *is*, whatever its name says.

``sniff(data, extension)`` returns a :class:`Sniffed` with a specific ``type`` (``dicom``,
``nifti``, ``zip``, ``pytorch``, ``png``, ``csv`` ...) and a ``family`` (``medical-image``,
``archive``, ``pickle``, ``model``, ``executable``, ``image``, ``document``, ``text``,
``binary``). Only text formats take their specific type from the extension (a CSV and a TSV
look the same to a byte sniffer); every binary format is decided by its bytes alone.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass

# Families
MEDICAL, ARCHIVE, PICKLE, MODEL, EXECUTABLE = "medical-image", "archive", "pickle", "model", "executable"
IMAGE, DOCUMENT, TEXT, BINARY, EMPTY = "image", "document", "text", "binary", "empty"

#: Text subtypes named by extension (content must still be text).
TEXT_EXTENSIONS = {
    "csv": "csv", "tsv": "tsv", "tab": "tsv", "txt": "txt", "text": "txt", "log": "txt",
    "md": "markdown", "json": "json", "geojson": "json", "html": "html", "htm": "html",
    "xml": "xml", "svg": "svg", "yaml": "yaml", "yml": "yaml", "ipynb": "ipynb",
    "py": "python", "r": "r", "sql": "sql", "tex": "tex",
    "sh": "script", "bash": "script", "zsh": "script", "bat": "script", "cmd": "script",
    "ps1": "script", "js": "script",
}
#: What an extension promises for binary formats (used to flag a name that lies).
BINARY_EXTENSIONS = {
    "dcm": "dicom", "dicom": "dicom", "nii": "nifti", "nii.gz": "nifti", "hdr": "nifti",
    "img": "analyze", "zip": "zip", "gz": "gzip", "tgz": "gzip", "tar.gz": "gzip",
    "tar": "tar", "7z": "7z", "rar": "rar", "bz2": "bz2", "tar.bz2": "bz2", "xz": "xz",
    "tar.xz": "xz", "zst": "zstd", "pkl": "pickle", "pickle": "pickle", "joblib": "pickle",
    "pt": "pytorch", "pth": "pytorch", "ckpt": "pytorch", "safetensors": "safetensors",
    "h5": "hdf5", "hdf5": "hdf5", "onnx": "onnx", "npy": "npy", "npz": "npz",
    "tflite": "tflite", "gguf": "gguf", "keras": "keras", "exe": "pe", "dll": "pe",
    "so": "elf", "elf": "elf", "dylib": "macho", "wasm": "wasm", "class": "java-class",
    "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "tif": "tiff", "tiff": "tiff",
    "webp": "webp", "bmp": "bmp", "pdf": "pdf", "docx": "office", "xlsx": "office",
    "pptx": "office",
}

_DICOM_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
    b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_HDF5 = b"\x89HDF\r\n\x1a\n"
_PNG = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Sniffed:
    type: str
    family: str
    detail: str = ""  # extra words for the reviewer (e.g. what an archive contains)


def sniff(data: bytes, extension: str = "") -> Sniffed:
    if not data:
        return Sniffed("empty", EMPTY)
    for probe in (_medical, _containers, _weights, _executables, _images_documents, _compressed):
        found = probe(data)
        if found is not None:
            return found
    if looks_like_raw_dicom(data):
        return Sniffed("dicom", MEDICAL, "DICOM data set without the 128-byte preamble")
    text = decode_text(data)
    if text is not None:
        return _text_type(text, extension)
    return Sniffed("binary", BINARY)


# ---------------------------------------------------------------- medical images
def _medical(d: bytes) -> Sniffed | None:
    if len(d) >= 132 and d[128:132] == b"DICM":
        return Sniffed("dicom", MEDICAL)
    nifti = nifti_kind(d)
    if nifti:
        return Sniffed(nifti[0], MEDICAL, nifti[1])
    return None


def nifti_kind(d: bytes) -> tuple[str, str] | None:
    """(type, detail) when ``d`` starts with a NIfTI-1, NIfTI-2 or Analyze 7.5 header."""
    if len(d) < 4:
        return None
    for endian in "<>":
        (size,) = struct.unpack_from(endian + "i", d, 0)
        if size == 348 and len(d) >= 348:
            magic = d[344:348]
            if magic in (b"n+1\x00", b"ni1\x00"):
                return "nifti", "NIfTI-1 " + ("single file" if magic[1:2] == b"+" else "header/image pair")
            if d[38:39] == b"r":
                return "analyze", "Analyze 7.5 header"
        if size == 540 and len(d) >= 12 and d[4:8] in (b"n+2\x00", b"ni2\x00"):
            return "nifti", "NIfTI-2"
    return None


def looks_like_raw_dicom(d: bytes) -> bool:
    """A DICOM data set written without preamble: walk the first elements and require
    groups 0002/0008, plausible VRs (explicit) or lengths (implicit), ascending tags."""
    if len(d) < 16:
        return False
    group, _ = struct.unpack_from("<HH", d, 0)
    if group not in (0x0002, 0x0008):
        return False
    for explicit in (True, False):
        pos, last, ok = 0, -1, 0
        while pos + 8 <= len(d) and ok < 3:
            g, e = struct.unpack_from("<HH", d, pos)
            tag = (g << 16) | e
            if g not in (0x0002, 0x0008) or tag <= last:
                break
            if explicit:
                vr = d[pos + 4:pos + 6]
                if vr not in _DICOM_VRS:
                    break
                if vr in _LONG_VRS:
                    if pos + 12 > len(d):
                        break
                    (length,) = struct.unpack_from("<I", d, pos + 8)
                    pos += 12
                else:
                    (length,) = struct.unpack_from("<H", d, pos + 6)
                    pos += 8
            else:
                (length,) = struct.unpack_from("<I", d, pos + 4)
                pos += 8
                if length > 1024:
                    break
            if length == 0xFFFFFFFF or pos + length > len(d):
                break
            pos += length
            last = tag
            ok += 1
        if ok >= 3 or (ok >= 1 and pos >= len(d)):
            return True
    return False


# ---------------------------------------------------------------- containers
def _containers(d: bytes) -> Sniffed | None:
    if d[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(d)
    if d[:2] == b"\x1f\x8b":
        return _gzip_kind(d)
    if len(d) >= 262 and d[257:262] == b"ustar":
        return Sniffed("tar", ARCHIVE, _members_note(_tar_names(d)))
    return None


def _zip_kind(d: bytes) -> Sniffed:
    try:
        names = zipfile.ZipFile(io.BytesIO(d)).namelist()
    except Exception:  # noqa: BLE001 - zipfile raises many kinds on hostile input; all mean "unreadable"
        return Sniffed("zip", ARCHIVE, "unreadable zip archive")
    if any(n.endswith("data.pkl") for n in names):
        return Sniffed("pytorch", MODEL, "PyTorch checkpoint (zip with data.pkl)")
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return Sniffed("keras", MODEL, "Keras model archive")
    if names and all(n.endswith(".npy") for n in names):
        return Sniffed("npz", MODEL, "numpy .npz array archive")
    if "[Content_Types].xml" in names:
        return Sniffed("office", DOCUMENT, "Office Open XML document")
    return Sniffed("zip", ARCHIVE, _members_note(names))


def _members_note(names: list[str]) -> str:
    note = f"{len(names)} entries"
    medical = [n for n in names if n.lower().endswith((".dcm", ".nii", ".nii.gz", ".ima"))]
    if medical:
        note += f", {len(medical)} of them named like DICOM/NIfTI files"
    return note


def _tar_names(d: bytes) -> list[str]:
    names, pos = [], 0
    while pos + 512 <= len(d) and len(names) < 10000:
        block = d[pos:pos + 512]
        if block[257:262] != b"ustar":
            break
        names.append(block[:100].split(b"\x00", 1)[0].decode("latin-1"))
        try:
            size = int(block[124:136].split(b"\x00", 1)[0].strip() or b"0", 8)
        except ValueError:
            break
        pos += 512 + (size + 511) // 512 * 512
    return names


def _gzip_kind(d: bytes) -> Sniffed:
    try:
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(d, 4096)
    except zlib.error:
        return Sniffed("gzip", ARCHIVE, "unreadable gzip stream")
    nifti = nifti_kind(head)
    if nifti:
        return Sniffed(nifti[0], MEDICAL, nifti[1] + ", gzip-compressed")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return Sniffed("dicom", MEDICAL, "gzip-compressed DICOM file")
    if len(head) >= 262 and head[257:262] == b"ustar":
        return Sniffed("gzip", ARCHIVE, "gzip-compressed tar archive")
    return Sniffed("gzip", ARCHIVE)


def _compressed(d: bytes) -> Sniffed | None:
    for magic, kind in (
        (b"7z\xbc\xaf\x27\x1c", "7z"), (b"Rar!\x1a\x07", "rar"), (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
    ):
        if d.startswith(magic):
            return Sniffed(kind, ARCHIVE)
    if len(d) >= 4 and d[:3] == b"BZh" and d[3:4] in b"123456789":
        return Sniffed("bz2", ARCHIVE)
    return None


# ---------------------------------------------------------------- pickles and weights
def _weights(d: bytes) -> Sniffed | None:
    if len(d) >= 2 and d[0] == 0x80 and 2 <= d[1] <= 5:
        return Sniffed("pickle", PICKLE, f"Python pickle, protocol {d[1]}")
    if d.startswith((b"(dp0\n", b"(lp0\n", b"(tp0\n", b"ccopy_reg\n", b"c__builtin__\n")) and d.rstrip().endswith(b"."):
        return Sniffed("pickle", PICKLE, "Python pickle, protocol 0")
    if d.startswith(b"\x93NUMPY"):
        return Sniffed("npy", MODEL, "numpy array")
    if any(d[off:off + 8] == _HDF5 for off in (0, 512, 1024, 2048)):
        return Sniffed("hdf5", MODEL, "HDF5 container (e.g. Keras weights)")
    if d.startswith(b"GGUF"):
        return Sniffed("gguf", MODEL, "GGUF model weights")
    if d[4:8] == b"TFL3":
        return Sniffed("tflite", MODEL, "TensorFlow Lite model")
    if _is_safetensors(d):
        return Sniffed("safetensors", MODEL, "safetensors weights")
    if _is_onnx(d):
        return Sniffed("onnx", MODEL, "ONNX model")
    return None


def _is_safetensors(d: bytes) -> bool:
    if len(d) < 10 or d[8:9] != b"{":
        return False
    (n,) = struct.unpack_from("<Q", d, 0)
    if n < 2 or n > len(d) - 8 or n > 100 * 1024 * 1024:
        return False
    try:
        return isinstance(json.loads(d[8:8 + n]), dict)
    except ValueError:
        return False


def _varint(d: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(d) and shift < 64:
        b = d[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


def _is_onnx(d: bytes) -> bool:
    """An ONNX ModelProto: starts with ir_version (field 1, varint 1..15) and its top-level
    fields are all ModelProto fields with the right wire types, including graph or opsets."""
    if len(d) < 4 or d[0] != 0x08 or not 1 <= d[1] <= 15:
        return False
    pos, seen = 0, set()
    try:
        while pos < len(d) and len(seen) < 32:
            key, pos = _varint(d, pos)
            number, wire = key >> 3, key & 7
            if _ONNX_FIELDS.get(number) != wire:
                return False
            seen.add(number)
            if wire == 0:
                _, pos = _varint(d, pos)
            else:
                length, pos = _varint(d, pos)
                if pos + length > len(d):
                    return False
                pos += length
    except ValueError:
        return False
    return bool(seen & {7, 8})


# ---------------------------------------------------------------- executables
def _executables(d: bytes) -> Sniffed | None:
    if d.startswith(b"\x7fELF"):
        return Sniffed("elf", EXECUTABLE, "ELF executable or library")
    if d.startswith(b"MZ") and len(d) >= 64:
        (off,) = struct.unpack_from("<I", d, 0x3C)
        if d[off:off + 4] == b"PE\x00\x00" or b"\x00" in d[:64]:
            return Sniffed("pe", EXECUTABLE, "Windows executable or DLL")
    if d[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"):
        return Sniffed("macho", EXECUTABLE, "Mach-O executable")
    if d[:4] == b"\xca\xfe\xba\xbe":
        return Sniffed("macho", EXECUTABLE, "Mach-O universal binary or Java class")
    if d.startswith(b"\x00asm"):
        return Sniffed("wasm", EXECUTABLE, "WebAssembly module")
    if d.startswith(b"#!"):
        return Sniffed("script", EXECUTABLE, "script with a #! interpreter line")
    return None


# ---------------------------------------------------------------- images and documents
def _images_documents(d: bytes) -> Sniffed | None:
    if d.startswith(_PNG):
        return Sniffed("png", IMAGE)
    if d.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", IMAGE)
    if d[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("gif", IMAGE)
    if d[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("tiff", IMAGE)
    if d[:4] == b"RIFF" and d[8:12] == b"WEBP":
        return Sniffed("webp", IMAGE)
    if d[:2] == b"BM" and len(d) >= 14 and struct.unpack_from("<I", d, 2)[0] == len(d):
        return Sniffed("bmp", IMAGE)
    if b"%PDF-" in d[:1024]:
        return Sniffed("pdf", DOCUMENT)
    return None


# ---------------------------------------------------------------- text
def decode_text(data: bytes) -> str | None:
    """Decode bytes the way every text check (and the reviewer page) must, so that
    character offsets agree: BOM-aware UTF-8/UTF-16, else UTF-8, else Latin-1 if the bytes
    look like text; ``None`` for binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        return _or_none(data[3:], "utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _or_none(data, "utf-16")
    head = data[:8192]
    if b"\x00" in head:
        return None
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if controls > len(head) * 0.02:
        return None
    text = _or_none(data, "utf-8")
    return text if text is not None else data.decode("latin-1")


def _or_none(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _text_type(text: str, extension: str) -> Sniffed:
    named = TEXT_EXTENSIONS.get(extension)
    if named == "script":
        return Sniffed("script", EXECUTABLE, "script source")
    if named:
        return Sniffed(named, TEXT)
    head = text.lstrip()[:512].lower()
    if head[:1] in ("{", "["):
        try:
            json.loads(text)
            return Sniffed("json", TEXT)
        except ValueError:
            pass
    if head.startswith(("<!doctype html", "<html")):
        return Sniffed("html", TEXT)
    return Sniffed("txt", TEXT)
