"""Finding burned-in text: candidate regions from the pixels, confirmed by Tesseract.

``TextFinder.find(values, grey)`` takes one frame (the stored sample values,
rows x columns x samples, and a grey rendering as a reader sees it:
MONOCHROME1 inverted, colour as luminance) and returns the rectangles that
hold text, in that frame's pixel coordinates.

Whole-frame OCR is slow and unreliable on images (ultrasound speckle and CT
noise read as words), so it runs in two steps:

1. **Candidates.** Burned-in text is drawn with one ink value: its stroke
   pixels have neighbours of exactly the same value (all samples) and stand
   out from their surroundings, in either polarity.  Noise, speckle and
   anatomy have neither property, flat backgrounds lack the contrast.  Such
   pixels are grouped into pieces of one value and the pieces into word-
   and line-sized boxes.  A group is kept when nearly all the pixels of its
   value are ink, over the frame or around the group itself (faint text
   shares its value with anatomy elsewhere, not next to it).  This works on
   the stored values, so 16-bit data need no windowing to be found.
2. **Confirmation.** Each box, with a margin, is windowed to 8 bits between
   its 0.5th and 99.5th percentiles, upscaled until its text is about 40 px
   high (small text is where OCR fails), and read by Tesseract in both
   polarities, turned by 90 degrees both ways when the box is upright, and
   again windowed between its ink and its background when that reads
   nothing.  A box in which Tesseract reads a word with a letter or digit
   at ``MIN_CONFIDENCE`` or more is text; its line (grown over the rest of
   its ink) is blanked.

Tesseract's English data come from the operating system (Debian's
``tesseract-ocr-eng``); nothing is downloaded.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

import numpy as np

from .textcandidates import candidates, contrasted

# Tesseract starts OpenMP threads per call; the ingest parallelises with
# worker processes, so one thread each (set before the library loads).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

TESSDATA_ENV = "SPE_TESSDATA"
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/*/tessdata", "/usr/share/tessdata",
                 "/usr/local/share/tessdata", "/usr/local/share/tesseract-ocr/*/tessdata")
LANG = "eng"
MIN_CONFIDENCE = 60.0        # Tesseract's word confidence, 0-100
TEXT_HEIGHT = 40             # crops are upscaled until their text is about this high
MAX_SCALE = 6
MIN_WORD = 3                 # letters and digits in a word that confirms a candidate
MIN_RUN = 5                  # letters/digits in a row, each read with RUN_CONFIDENCE,
RUN_CONFIDENCE = 90.0        # that confirm one (ultrasound speckle reads as runs at 75)
_ALNUM = re.compile(r"[0-9A-Za-z]")


class TesseractMissing(RuntimeError):
    """The option cannot run: the binding or the language data are missing."""


@dataclass(frozen=True, slots=True)
class Region:
    x: int
    y: int
    w: int
    h: int
    confidence: float

    def as_dict(self, frame: int) -> dict:
        return {"frame": frame, "box": [self.x, self.y, self.w, self.h],
                "confidence": round(self.confidence, 1)}


def tessdata_dir() -> str:
    """The directory with ``eng.traineddata``; raises TesseractMissing."""
    explicit = os.environ.get(TESSDATA_ENV)
    candidates = [explicit] if explicit else sorted(
        (d for pattern in TESSDATA_DIRS for d in glob.glob(pattern)), reverse=True)
    for directory in candidates:
        if directory and os.path.isfile(os.path.join(directory, f"{LANG}.traineddata")):
            return directory
    where = explicit if explicit else ", ".join(TESSDATA_DIRS)
    raise TesseractMissing(
        f"clean-pixel-data needs Tesseract's English data ({LANG}.traineddata), not found in "
        f"{where}; install Debian's tesseract-ocr-eng (scripts/deps.d/tesseract.sh does)"
        + (f" or point {TESSDATA_ENV} at its tessdata directory" if not explicit else ""))


def check() -> str:
    """Fail early, with what to install, when OCR cannot run; returns a
    description of the engine (version and data directory)."""
    try:
        import tesserocr
    except ImportError as exc:
        raise TesseractMissing(
            "clean-pixel-data needs the tesserocr binding to Tesseract "
            f"({exc}); install the project's Python dependencies (pip install -e .)") from None
    data = tessdata_dir()
    try:
        with tesserocr.PyTessBaseAPI(path=data + "/", lang=LANG):
            pass
    except RuntimeError as exc:
        raise TesseractMissing(f"Tesseract cannot load {LANG} from {data}: {exc}") from None
    return f"{tesserocr.tesseract_version().splitlines()[0]} ({data})"


def to_8bit(grey: np.ndarray) -> np.ndarray:
    """Window a frame into 0..255 between its 0.5th and 99.5th percentiles
    (the full range when that window is flat)."""
    if grey.dtype == np.uint8:
        return grey
    lo, hi = np.percentile(grey, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(grey.min()), float(grey.max())
    if hi <= lo:
        return np.zeros(grey.shape, np.uint8)
    out = (grey - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def _window(grey: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Grey values between lo and hi stretched to 0..255, clipped outside."""
    out = (grey - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def _upscale(img: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return img
    from PIL import Image
    h, w = img.shape
    return np.asarray(Image.fromarray(img).resize((w * scale, h * scale), Image.BICUBIC))


class TextFinder:
    """One Tesseract instance per process (created lazily, after a fork)."""

    def __init__(self, min_confidence: float = MIN_CONFIDENCE):
        self.min_confidence = min_confidence
        self._api = None

    def _tess(self):
        if self._api is None:
            import tesserocr
            api = tesserocr.PyTessBaseAPI(path=tessdata_dir() + "/", lang=LANG,
                                          psm=tesserocr.PSM.SINGLE_BLOCK,
                                          oem=tesserocr.OEM.LSTM_ONLY)
            api.SetVariable("user_defined_dpi", "300")
            self._api = api
            self._ril = tesserocr.RIL.WORD
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.End()
            self._api = None

    def _confidence(self, img: np.ndarray, inner: np.ndarray) -> float:
        """The best confidence of a word of MIN_WORD letters or digits whose
        centre lies in the candidate itself, not in the margin (0: none)."""
        api = self._tess()
        img = np.ascontiguousarray(img)
        h, w = img.shape
        api.SetImageBytes(img.tobytes(), w, h, 1, w)
        api.Recognize()
        it = api.GetIterator()
        best = 0.0
        if it is None:
            return best
        ril = self._ril
        while True:
            if not it.Empty(ril):
                word = it.GetUTF8Text(ril) or ""
                box = it.BoundingBox(ril)
                if box is not None and len(_ALNUM.findall(word)) >= MIN_WORD:
                    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
                    if 0 <= cy < h and 0 <= cx < w and inner[cy, cx]:
                        best = max(best, it.Confidence(ril))
            if not it.Next(ril):
                break
        if best < self.min_confidence:
            best = max(best, self._run_confidence(api.GetIterator(), inner))
        return best

    def _run_confidence(self, it, inner: np.ndarray) -> float:
        """The best run of MIN_RUN letters or digits inside one word, each
        read with ``RUN_CONFIDENCE`` or more, centred in the candidate: its
        lowest confidence (0: none).  Tesseract gives a whole word a low
        confidence for one odd symbol ("MUELLER^JOHAN" read as
        "MUELLER“JOHAN-", every letter at 99, the word at 0)."""
        import tesserocr
        sym, word = tesserocr.RIL.SYMBOL, tesserocr.RIL.WORD
        h, w = inner.shape
        best, run = 0.0, []
        while it is not None:
            if it.IsAtBeginningOf(word):
                run = []
            if not it.Empty(sym):
                text = it.GetUTF8Text(sym) or ""
                conf = it.Confidence(sym)
                box = it.BoundingBox(sym)
                if _ALNUM.fullmatch(text) and conf >= RUN_CONFIDENCE and box is not None:
                    run.append((conf, box))
                else:
                    run = []
                if len(run) >= MIN_RUN:
                    x0, y0 = run[-MIN_RUN][1][:2]
                    x1, y1 = run[-1][1][2:]
                    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
                    if 0 <= cy < h and 0 <= cx < w and inner[cy, cx]:
                        best = max(best, min(c for c, _ in run[-MIN_RUN:]))
            if not it.Next(sym):
                break
        return best

    def read_box(self, grey: np.ndarray, box: tuple, letters: float,
                 ink: float | None = None) -> float:
        """Tesseract's best word confidence in one candidate box.

        Read as windowed between the crop's 0.5th and 99.5th percentiles,
        and, when that gives no word and the ink's grey level is known,
        windowed between the ink and the crop's median (its background):
        faint text next to something brighter (a label, other text, bone)
        then gets the full contrast; last, the pixels of the ink's level
        alone (faint text on a background as busy as its strokes)."""
        x, y, w, h = box
        rows, cols = grey.shape
        m = max(4, int(0.3 * min(w, h)))
        y0, x0 = max(0, y - m), max(0, x - m)
        crop = grey[y0:min(rows, y + h + m), x0:min(cols, x + w + m)].astype(np.float32)
        scale = int(max(1, min(MAX_SCALE, round(TEXT_HEIGHT / max(letters, 1)))))
        turns = (0,) if w >= 1.5 * h else (1, 3) if h >= 1.5 * w else (0, 1, 3)
        windows = [to_8bit(crop)]
        if ink is not None:
            background = float(np.median(crop))
            if abs(ink - background) > 0:
                windows.append(_window(crop, min(ink, background), max(ink, background)))
            # the ink alone: text on speckle or anatomy as busy as its strokes
            windows.append(np.where(crop == ink, 255, 0).astype(np.uint8))
        best = 0.0
        for img8 in windows:
            big = _upscale(img8, scale)
            inner = np.zeros(big.shape, bool)
            inner[(y - y0) * scale:(y - y0 + h) * scale,
                  (x - x0) * scale:(x - x0 + w) * scale] = True
            for k in turns:
                turned = np.rot90(big, k) if k else big
                turned_inner = np.rot90(inner, k) if k else inner
                for img in (turned, 255 - turned):
                    best = max(best, self._confidence(img, turned_inner))
                    if best >= self.min_confidence:
                        return best
        return best

    def find(self, values: np.ndarray, grey: np.ndarray,
             done: np.ndarray | None = None, anchors=()) -> list[Region]:
        """Text rectangles in one frame; ``done``: pixels already blanked,
        ``anchors``: their boxes (text found in an earlier round)."""
        rows, cols = grey.shape
        cands = candidates(values, grey, done)
        conf = [self.read_box(grey, box, letters, ink) for box, letters, ink in cands]
        text = [c >= self.min_confidence for c in conf]
        # Line completion: a piece in line with text Tesseract confirmed, of
        # the same letter size, is the rest of it (a name split at '^', a
        # word read with less confidence on its own).  Not transitive.
        read = list(text)
        for i, (box, letters, _ink) in enumerate(cands):
            if text[i]:
                continue
            for j, (other, other_letters, _) in enumerate(cands):
                if read[j] and 0.5 <= letters / max(other_letters, 1) <= 2 \
                        and _in_line(box, other):
                    text[i], conf[i] = True, conf[j]
                    break
            else:
                for anchor in anchors:
                    if _in_line(box, (anchor.x, anchor.y, anchor.w, anchor.h)):
                        text[i], conf[i] = True, anchor.confidence
                        break
        boxes = [(box, c, {ink}) for (box, _l, ink), c, t in zip(cands, conf, text) if t]
        # one box per line of text: the hull of its pieces (letters drawn
        # without a pixel of pure ink between them go too), longer by a
        # letter or two at both ends for the same reason
        merged = True
        while merged:
            merged = False
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    (a, ca, ia), (b, cb, ib) = boxes[i], boxes[j]
                    if _in_line(a, b):
                        x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                        x1 = max(a[0] + a[2], b[0] + b[2])
                        y1 = max(a[1] + a[3], b[1] + b[3])
                        boxes[i] = ((x0, y0, x1 - x0, y1 - y0), max(ca, cb), ia | ib)
                        del boxes[j]
                        merged = True
                        break
                if merged:
                    break
        found = []
        standing_out = contrasted(grey) if boxes else None
        for box, c, inks in boxes:
            x, y, w, h = _along_ink(grey, standing_out, box, inks)
            if w >= h:
                x, w = x - 3 * h // 2, w + 3 * h
            else:
                y, h = y - 3 * w // 2, h + 3 * w
            found.append(pad(Region(x, y, w, h, float(c)), rows, cols))
        return _merge(found, rows, cols)


def _along_ink(grey: np.ndarray, standing_out: np.ndarray, box: tuple, inks: set) -> tuple:
    """A confirmed line's box lengthened along its axis over the rest of
    its ink: pixels of its ink's grey level that stand out from their
    surroundings, in the line's band, no more than two line heights apart.
    Small text has few pixels of pure ink, mostly alone, too few to make
    a candidate of every word."""
    x, y, w, h = box
    wide = w >= h
    band = grey[y:y + h, :] if wide else grey[:, x:x + w].T
    out = standing_out[y:y + h, :] if wide else standing_out[:, x:x + w].T
    thickness = band.shape[0]
    level = np.isin(band, np.fromiter(inks, np.float32, len(inks))) & out
    hits = np.flatnonzero(level.any(axis=0))
    start, stop = (x, x + w) if wide else (y, y + h)
    gap = 2 * thickness
    before, after = hits[hits < start][::-1], hits[hits >= stop]
    for position in before:
        if start - position > gap:
            break
        start = int(position)
    for position in after:
        if position - (stop - 1) > gap:
            break
        stop = int(position) + 1
    return (start, y, stop - start, h) if wide else (x, start, w, stop - start)


def _in_line(a: tuple, b: tuple) -> bool:
    """Whether box a continues box b along a horizontal or vertical line."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    overlap_y = min(ay + ah, by + bh) - max(ay, by)
    overlap_x = min(ax + aw, bx + bw) - max(ax, bx)
    gap_x = max(ax, bx) - min(ax + aw, bx + bw)
    gap_y = max(ay, by) - min(ay + ah, by + bh)
    tall = ah > 1.5 * aw and bh > 1.5 * bw      # both pieces of vertical text
    wide = aw > 1.5 * ah and bw > 1.5 * bh      # both pieces of horizontal text
    if not tall and overlap_y >= 0.5 * min(ah, bh) and gap_x <= 2 * max(min(ah, bh), 4):
        return True
    return (not wide and overlap_x >= 0.5 * min(aw, bw)
            and gap_y <= 2 * max(min(aw, bw), 4))


def pad(region: Region, rows: int, cols: int) -> Region:
    """Grow a box by a pixel or two so anti-aliased edges go too."""
    m = max(1, round(0.1 * min(region.w, region.h)))
    x0, y0 = max(0, region.x - m), max(0, region.y - m)
    x1, y1 = min(cols, region.x + region.w + m), min(rows, region.y + region.h + m)
    return Region(x0, y0, x1 - x0, y1 - y0, region.confidence)


def _merge(regions: list[Region], rows: int, cols: int) -> list[Region]:
    """Overlapping boxes merged; sorted so the result is deterministic."""
    out: list[Region] = []
    for r in sorted(regions, key=lambda r: (r.y, r.x, r.w, r.h, -r.confidence)):
        for i, o in enumerate(out):
            ix = min(o.x + o.w, r.x + r.w) - max(o.x, r.x)
            iy = min(o.y + o.h, r.y + r.h) - max(o.y, r.y)
            if ix > 0 and iy > 0:
                x0, y0 = min(o.x, r.x), min(o.y, r.y)
                x1, y1 = max(o.x + o.w, r.x + r.w), max(o.y + o.h, r.y + r.h)
                out[i] = Region(x0, y0, x1 - x0, y1 - y0, max(o.confidence, r.confidence))
                break
        else:
            out.append(r)
    return sorted(out, key=lambda r: (r.y, r.x, r.w, r.h))
