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
        raw, bands = _pixels(data)
        if raw:
            out += _payload(raw, bands, w, h, where)
    return out


def _pixels(data: bytes) -> tuple[bytes, int]:
    """The decoded pixel bytes, row by row as stored, and the bytes per pixel."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                raw = im.tobytes()
                bands = len(im.getbands()) if im.mode not in ("1", "I;16", "I", "F") else 0
                return raw, bands
    except Exception:  # noqa: BLE001 - undecodable pixels: nothing to sniff
        return b"", 0


def _payload(raw: bytes, bands: int, w: int, h: int, where: dict) -> list[Finding]:
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
            and _difference_entropy(np.frombuffer(sample, dtype=np.uint8)) >= 3:
        return [Finding(CHECK, Severity.BLOCK, f"The image's pixel bytes read as text ('{_show(sample)}'): data "
                        "written into pixels. Export the data as a file that can be checked.",
                        {**where, "reason": "payload", "payload_type": "text"})]
    bits = _neighbour_entropy(raw, bands, w, h)
    if len(raw) >= 4096 and bits >= RANDOM_BITS:
        return [Finding(CHECK, Severity.WARN, f"Neighbouring pixels differ like random data ({bits:.2f} bits per "
                        "byte): the image may carry encrypted or compressed data, or be noise. Check it is a real "
                        "figure.", {**where, "reason": "random-pixels", "entropy_bits": round(bits, 2)})]
    return []


def _neighbour_entropy(raw: bytes, bands: int, w: int, h: int) -> float:
    """Entropy of the differences between horizontally and vertically neighbouring pixels,
    per channel (the smaller of the two): about 8 bits for random data, far less for a picture."""
    a = np.frombuffer(raw, dtype=np.uint8)
    if not bands or a.size != w * h * bands:
        return _difference_entropy(a[:65536])
    a = a.reshape(h, w, bands)[:512, :512]
    across = a[:, 1:, :].astype(np.int16) - a[:, :-1, :] if a.shape[1] > 1 else None
    down = a[1:, :, :].astype(np.int16) - a[:-1, :, :] if a.shape[0] > 1 else None
    found = [_entropy(d % 256) for d in (across, down) if d is not None and d.size]
    return min(found) if found else 0.0


def _text_like(sample: bytes) -> bool:
    """Mostly letters and digits, with separators (space, comma, tab, newline) between them."""
    alnum = sum(1 for b in sample if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122)
    separators = sum(1 for b in sample if b in (32, 10, 44, 9, 59))
    return alnum >= 0.5 * len(sample) and separators >= 0.02 * len(sample)


def _show(sample: bytes) -> str:
    return sample[:60].decode("ascii", "replace").replace("\n", " ")


def _difference_entropy(a: np.ndarray) -> float:
    return _entropy(np.diff(a.astype(np.int16)) % 256) if a.size > 1 else 0.0


def _entropy(d: np.ndarray) -> float:
    counts = np.bincount(d.ravel().astype(np.int64), minlength=256).astype(float)
    p = counts[counts > 0] / d.size
    return float(-(p * np.log2(p)).sum())
