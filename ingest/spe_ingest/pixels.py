"""Pixel data as arrays, for the Clean Pixel Data option, and blanking in place.

Only what the option needs: the Image Pixel module read from the tokenised
header, native (uncompressed) pixel data viewed as ``frames x rows x columns
[x samples]`` without copying, and rectangles set to the value that displays
as black.  Encapsulated (compressed) pixel data are decoded for inspection
only (through pydicom, when one of its decoders handles the transfer syntax);
they are never re-encoded, so an object whose compressed pixels hold text
cannot be cleaned here and goes to quarantine.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .dicomio import text
from .dictionary import tag as _t

_TAGS = {k: _t(k) for k in (
    "Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "PlanarConfiguration", "PhotometricInterpretation",
    "NumberOfFrames")}
# photometric interpretations whose native pixels can be examined and blanked
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL")


class NotExaminable(Exception):
    """The pixel data cannot be read as images (short reason in ``args[0]``)."""


@dataclass(frozen=True, slots=True)
class PixelModule:
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    planar: int
    photometric: str
    frames: int

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples * self.bits_allocated // 8


def pixel_module(top: dict, buf: bytes, little: bool) -> PixelModule:
    """The Image Pixel module from the top-level elements of a tokenised file."""
    def us(kw: str, default: int) -> int:
        el = top.get(_TAGS[kw])
        if el is None or el.vend - el.vstart < 2:
            return default
        return struct.unpack_from("<H" if little else ">H", buf, el.vstart)[0]

    def string(kw: str) -> str:
        el = top.get(_TAGS[kw])
        return text(buf[el.vstart:el.vend]) if el is not None and el.items is None else ""

    try:
        frames = int(string("NumberOfFrames") or 1)
    except ValueError:
        frames = 1
    bits = us("BitsAllocated", 8)
    return PixelModule(us("Rows", 0), us("Columns", 0), us("SamplesPerPixel", 1), bits,
                       us("BitsStored", bits), us("PixelRepresentation", 0) == 1,
                       us("PlanarConfiguration", 0), string("PhotometricInterpretation").upper(),
                       max(frames, 1))


def native_frames(pm: PixelModule, value: bytearray | bytes, little: bool) -> np.ndarray:
    """A view of native pixel data as (frames, rows, columns, samples).

    Writing into the view writes into ``value`` (when it is a bytearray).
    """
    if pm.rows == 0 or pm.columns == 0:
        raise NotExaminable("no-image-size")
    if pm.bits_allocated not in (8, 16, 32):
        raise NotExaminable(f"bits-allocated-{pm.bits_allocated}")
    if pm.photometric not in MONOCHROME + COLOUR:
        raise NotExaminable(f"photometric-{pm.photometric.lower() or 'missing'}")
    if (pm.photometric in MONOCHROME) != (pm.samples == 1) or pm.samples not in (1, 3):
        raise NotExaminable("samples-per-pixel")
    need = pm.frame_bytes * pm.frames
    if len(value) < need:
        raise NotExaminable("truncated")
    kind = "i" if pm.signed else "u"
    dtype = np.dtype(f"{'<' if little else '>'}{kind}{pm.bits_allocated // 8}")
    flat = np.frombuffer(memoryview(value)[:need], dtype=dtype)
    if pm.samples == 1:
        return flat.reshape(pm.frames, pm.rows, pm.columns, 1)
    if pm.planar == 1:   # RRR...GGG...BBB... per frame
        return flat.reshape(pm.frames, 3, pm.rows, pm.columns).transpose(0, 2, 3, 1)
    return flat.reshape(pm.frames, pm.rows, pm.columns, 3)


def stored_values(pm: PixelModule, frame: np.ndarray) -> np.ndarray:
    """The meaningful bits of one frame (rows, columns, samples) as int64:
    bits above Bits Stored masked off, sign extended when signed."""
    values = frame.astype(np.int64)
    if pm.bits_stored < pm.bits_allocated:
        mask = (1 << pm.bits_stored) - 1
        values &= mask
        if pm.signed:
            sign = 1 << (pm.bits_stored - 1)
            values = (values ^ sign) - sign
    return values


def luminance(pm: PixelModule, values: np.ndarray) -> np.ndarray:
    """One grey channel (float32) that shows text as a reader of the image sees it."""
    if pm.samples == 1:
        grey = values[..., 0].astype(np.float32)
        return -grey if pm.photometric == "MONOCHROME1" else grey
    v = values.astype(np.float32)
    if pm.photometric == "YBR_FULL":
        return v[..., 0]
    return 0.299 * v[..., 0] + 0.587 * v[..., 1] + 0.114 * v[..., 2]


def black(pm: PixelModule, values: np.ndarray) -> tuple[int, ...]:
    """The sample values that display as black for this frame: the darkest
    stored value of a monochrome frame (its minimum, or maximum for
    MONOCHROME1), zero for RGB, Y=0 with neutral chroma for YBR_FULL."""
    if pm.samples == 1:
        return (int(values.max() if pm.photometric == "MONOCHROME1" else values.min()),)
    if pm.photometric == "YBR_FULL":
        mid = 1 << (pm.bits_stored - 1)
        return (0, mid, mid)
    return (0, 0, 0)


def blank(frame: np.ndarray, boxes, fill: tuple[int, ...]) -> None:
    """Set every (x, y, w, h) box of one frame view to ``fill``, in place."""
    rows, cols = frame.shape[:2]
    for x, y, w, h in boxes:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(cols, x + w), min(rows, y + h)
        if x1 > x0 and y1 > y0:
            for s, v in enumerate(fill):
                frame[y0:y1, x0:x1, s] = v


def decode_encapsulated(data: bytes) -> tuple[PixelModule, np.ndarray]:
    """Decode compressed pixel data with pydicom for inspection only.

    Returns the module and (frames, rows, columns, samples) values; raises
    NotExaminable when no installed decoder handles the transfer syntax.
    """
    import io
    import warnings

    import pydicom
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            arr = ds.pixel_array
            # pydicom's decoders convert YCbCr to RGB by default (as_rgb)
            photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "cannot look"
        raise NotExaminable("compressed-not-decodable") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    arr = np.asarray(arr).reshape(frames, int(ds.Rows), int(ds.Columns), samples)
    bits = int(ds.get("BitsAllocated", 8))
    pm = PixelModule(int(ds.Rows), int(ds.Columns), samples, bits,
                     int(ds.get("BitsStored", bits)), int(ds.get("PixelRepresentation", 0)) == 1,
                     0, photometric if samples == 1 else "RGB", frames)
    if pm.photometric not in MONOCHROME + COLOUR:
        raise NotExaminable(f"photometric-{pm.photometric.lower() or 'missing'}")
    return pm, arr
