"""PS3.15's Clean Pixel Data option: burned-in text found by OCR and blanked.

With the option every image is examined, frame by frame: ultrasound,
secondary captures, objects whose header admits burned-in annotation and
every other image.  What happens to an object:

=========================  ===================================================
``clean``                  examined, no text found; pixels unchanged
``cleaned``                text found and blanked in native pixel data
                           (the darkest value of the frame); Burned In
                           Annotation becomes NO; an object quarantined only
                           because its header said YES is now accepted
``text-not-rewritable``    text found in compressed pixel data, which this
                           tool does not re-encode: quarantined
                           (``burned-in-text-not-rewritable``)
``not-examinable``         the pixels cannot be read as an image (a decoder
                           is missing, float or 1-bit data, palette colour,
                           …): quarantined (``pixel-data-not-examinable``),
                           never passed through unexamined
=========================  ===================================================

The rectangles (frame, x, y, width, height, confidence) go to the report and
the manifest; the text itself is never kept.  A frame is looked at again
after blanking until nothing more is found (at most ``ROUNDS`` times), and
frames identical to an earlier one reuse its result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import blake2b

import numpy as np

from . import pixels
from .ocr import Region, TextFinder

ROUNDS = 3
CLEAN, CLEANED, NOT_REWRITABLE, NOT_EXAMINABLE = (
    "clean", "cleaned", "text-not-rewritable", "not-examinable")
REASON_NOT_REWRITABLE = "burned-in-text-not-rewritable"
REASON_NOT_EXAMINABLE = "pixel-data-not-examinable"


@dataclass(slots=True)
class PixelCheck:
    status: str
    regions: list = field(default_factory=list)     # [{frame, box, confidence}]
    cleaned_value: bytes | None = None              # the new pixel data value
    detail: str = ""

    @property
    def examined(self) -> bool:
        return self.status in (CLEAN, CLEANED)

    def reason(self, prior: str) -> str:
        """The quarantine reason after this check, given the classifier's."""
        if self.status == NOT_REWRITABLE:
            return REASON_NOT_REWRITABLE
        if self.status == NOT_EXAMINABLE:
            return prior or REASON_NOT_EXAMINABLE
        if self.status == CLEANED and prior == "burned-in-annotation":
            return ""
        return prior


class PixelCleaner:
    def __init__(self, finder: TextFinder | None = None):
        self.finder = finder or TextFinder()

    def check(self, data: bytes, parsed, top: dict, pixel) -> PixelCheck:
        from .dicomio import PIXEL_DATA
        if pixel.tag != PIXEL_DATA:
            return PixelCheck(NOT_EXAMINABLE, detail="float-pixel-data")
        try:
            if pixel.undefined:
                return self._encapsulated(data)
            return self._native(parsed, top, pixel)
        except pixels.NotExaminable as exc:
            return PixelCheck(NOT_EXAMINABLE, detail=str(exc))

    # ------------------------------------------------------------ native
    def _native(self, parsed, top: dict, pixel) -> PixelCheck:
        buf = parsed.buf
        pm = pixels.pixel_module(top, buf, parsed.little)
        value = bytearray(buf[pixel.vstart:pixel.vend])
        frames = pixels.native_frames(pm, value, parsed.little)
        regions: list[dict] = []
        seen: dict[bytes, list[Region]] = {}
        for index in range(pm.frames):
            frame = frames[index]
            key = blake2b(frame.tobytes(), digest_size=16).digest()
            found = seen.get(key)
            if found is None:
                found = seen[key] = self._clean_frame(pm, frame)
            elif found:
                values = pixels.stored_values(pm, frame)
                pixels.blank(frame, [(r.x, r.y, r.w, r.h) for r in found],
                             pixels.black(pm, values))
            regions.extend(r.as_dict(index) for r in found)
        if not regions:
            return PixelCheck(CLEAN)
        return PixelCheck(CLEANED, regions, bytes(value))

    def _clean_frame(self, pm, frame) -> list[Region]:
        """Find, blank, look again: every region blanked in this frame."""
        values = pixels.stored_values(pm, frame)
        fill = pixels.black(pm, values)
        done: list[Region] = []
        blanked = np.zeros(frame.shape[:2], bool)
        for _ in range(ROUNDS):
            found = self.finder.find(values, pixels.luminance(pm, values), done=blanked,
                                     anchors=done)
            if not found:
                break
            pixels.blank(frame, [(r.x, r.y, r.w, r.h) for r in found], fill)
            for r in found:
                blanked[r.y:r.y + r.h, r.x:r.x + r.w] = True
            done.extend(found)
            values = pixels.stored_values(pm, frame)
        return sorted(done, key=lambda r: (r.y, r.x, r.w, r.h))

    # ------------------------------------------------------------ compressed
    def _encapsulated(self, data: bytes) -> PixelCheck:
        pm, arr = pixels.decode_encapsulated(data)
        regions = []
        for index in range(pm.frames):
            values = arr[index].astype(np.int64)
            if values.ndim == 2:
                values = values[..., None]
            for r in self.finder.find(values, pixels.luminance(pm, values)):
                regions.append(r.as_dict(index))
        if regions:
            return PixelCheck(NOT_REWRITABLE, regions, detail="compressed-transfer-syntax")
        return PixelCheck(CLEAN)
