"""Images as data carriers: pixels that are not a picture.

A figure is a few hundred to a few thousand pixels each way, in ordinary proportions, and
neighbouring pixels are alike. An image that is one pixel wide and thousands long, or whose
raw pixel bytes start with another file's signature, or whose pixels are as random as
compressed or encrypted data, is a way to smuggle a file past the checks.

``image.carrier`` findings (location ``{"width", "height", ...}``):

* BLOCK, geometry: a side of at most 2 pixels with the other ≥ 64; an aspect ratio ≥ 50:1;
  a side over 20,000 pixels; more than 100 megapixels.
* BLOCK, payload: the decoded pixel bytes (row by row, as stored) sniff as another file type
  (zip, gzip, PDF, DICOM, NIfTI, pickle, PNG …) or are mostly printable text.
* WARN, randomness: the bytes of neighbouring pixels differ like random data (entropy of the
  differences ≥ 7.5 bits per byte over ≥ 4 KiB): encrypted or compressed data, or pure noise.

Pixels are decoded with Pillow, up to :data:`MAX_DECODE_PIXELS`; JPEG is lossy and cannot carry
exact bytes, so only its geometry is checked.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from .model import Finding, Severity

CHECK = "image.carrier"
MAX_DECODE_PIXELS = 40_000_000
MAX_SIDE = 20_000
MAX_PIXELS = 100_000_000
MAX_ASPECT = 50
THIN_SIDE, THIN_LONG = 2, 64
RANDOM_BITS = 7.5
_LOSSLESS = {"png", "gif", "bmp", "tiff", "webp"}


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header, without decoding the pixels."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on hostile input: no size known
        return None


def check_pixels(kind: str, data: bytes) -> list[Finding]:
    size = image_size(data)
    if size is None:
        return []
    w, h = size
    where = {"width": w, "height": h}
    out = []
    short, long_ = min(w, h), max(w, h)
    if short <= THIN_SIDE and long_ >= THIN_LONG:
        out.append(Finding(CHECK, Severity.BLOCK, f"The image is {w} × {h} pixels: {short} pixel(s) wide and "
                           f"{long_} long is not a figure but a strip of bytes. Export the data it holds as a "
                           "table, or a real figure.", {**where, "reason": "degenerate-geometry"}))
    elif short and long_ / short >= MAX_ASPECT:
        out.append(Finding(CHECK, Severity.BLOCK, f"The image is {w} × {h} pixels, an aspect ratio of "
                           f"{long_ / short:.0f}:1 (a figure or colour bar stays below {MAX_ASPECT}:1). Images in "
                           "such proportions are used to carry data; export a figure of ordinary proportions.",
                           {**where, "reason": "aspect-ratio"}))
    if long_ > MAX_SIDE or w * h > MAX_PIXELS:
        out.append(Finding(CHECK, Severity.BLOCK, f"The image is {w} × {h} pixels ({w * h / 1e6:.0f} megapixels), "
                           f"more than any figure needs (a side ≤ {MAX_SIDE:,}, ≤ {MAX_PIXELS // 10**6} MP). "
                           "Export it smaller.", {**where, "reason": "implausible-size"}))
    if kind in _LOSSLESS and w * h <= MAX_DECODE_PIXELS:
        raw = _pixels(data)
        if raw:
            out += _payload(raw, where)
    return out


def _pixels(data: bytes) -> bytes:
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.tobytes()
    except Exception:  # noqa: BLE001 - undecodable pixels: nothing to sniff
        return b""


def _payload(raw: bytes, where: dict) -> list[Finding]:
    from .sniff import BINARY, EMPTY, IMAGE, TEXT, sniff
    head = raw[:1 << 20]
    if len(set(head[:4096])) <= 1:
        return []  # a plain background
    s = sniff(head)
    if s.family not in (TEXT, BINARY, EMPTY) and not (s.family == IMAGE and s.type == "bmp"):
        return [Finding(CHECK, Severity.BLOCK, f"The image's pixel bytes are a {s.type.upper()} file"
                        f"{' (' + s.detail + ')' if s.detail else ''}, not a picture: a file hidden in pixels. "
                        "It must not leave.", {**where, "reason": "payload", "payload_type": s.type})]
    sample = head[:65536]
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    if printable >= 0.97 * len(sample) and len(set(sample)) >= 10 and _text_like(sample) \
            and _difference_entropy(sample) >= 3:
        return [Finding(CHECK, Severity.BLOCK, f"The image's pixel bytes read as text ('{_show(sample)}'): data "
                        "written into pixels. Export the data as a file that can be checked.",
                        {**where, "reason": "payload", "payload_type": "text"})]
    bits = _difference_entropy(sample)
    if len(sample) >= 4096 and bits >= RANDOM_BITS:
        return [Finding(CHECK, Severity.WARN, f"Neighbouring pixels differ like random data ({bits:.2f} bits per "
                        "byte): the image may carry encrypted or compressed data, or be noise. Check it is a real "
                        "figure.", {**where, "reason": "random-pixels", "entropy_bits": round(bits, 2)})]
    return []


def _text_like(sample: bytes) -> bool:
    """Mostly letters and digits, with separators (space, comma, tab, newline) between them."""
    alnum = sum(1 for b in sample if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122)
    separators = sum(1 for b in sample if b in (32, 10, 44, 9, 59))
    return alnum >= 0.5 * len(sample) and separators >= 0.02 * len(sample)


def _show(sample: bytes) -> str:
    return sample[:60].decode("ascii", "replace").replace("\n", " ")


def _difference_entropy(sample: bytes) -> float:
    a = np.frombuffer(sample, dtype=np.uint8)
    if a.size < 2:
        return 0.0
    d = np.diff(a.astype(np.int16)) % 256
    counts = np.bincount(d, minlength=256).astype(float)
    p = counts[counts > 0] / d.size
    return float(-(p * np.log2(p)).sum()) if p.size else 0.0
