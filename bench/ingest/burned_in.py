"""Accuracy of the Clean Pixel Data option: plant text in pixels, ingest, read again.

    .venv/bin/python bench/ingest/burned_in.py [--text-images 120] [--clean-images 100]
                                                [--workers 2] [--seed 1] [--keep]

Renders names, dates and record numbers with Debian's DejaVu fonts
(fonts-dejavu-core) onto synthetic CT-, MR- and ultrasound-like images:
sizes 8-40 px, high and low contrast, light-on-dark and dark-on-light,
corners and the middle of the anatomy, horizontal and turned by 90 degrees,
8- and 16-bit, monochrome and RGB, single- and multi-frame.  The same
strings are planted in the header (patient name, ID, birth date).  Then
``spe-ingest run --option clean-pixel-data`` runs on the tree, and:

- **recall**: the share of planted strings no longer readable by a second,
  separate OCR pass on the output (each string's region cropped from the
  output frame with a margin, turned upright, upscaled, read by Tesseract in
  line and block mode in both polarities; "readable" = any of the string's
  words of 3+ letters/digits is read).  The same pass on the *input* says
  how many were readable to begin with.  By text size.
- **ink covered**: the share of the text's own pixels that were blanked.
- **false positives**: the share of images without text in which anything
  was blanked.
- **leaks**: planted strings still readable in the output pixels, or found
  in the output's bytes (headers); each readable one is listed with its
  size, contrast, rotation, position, modality, bit depth, colour, frame
  count and whether it was readable in the input, and counted per property
  (``leaks_by``).

Also the throughput of the option on this corpus (all candidates: every
file holds an image, a third of them ultrasound).  Results go to
``bench/results/burned-in-<timestamp>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf")
SIZES = (8, 10, 12, 16, 20, 28, 40)
SURNAMES = ("MUELLER", "JANSSEN", "KOWALSKI", "GARCIA", "ROSSI", "NIELSEN", "DUBOIS",
            "HOFFMANN", "VISSER", "NOWAK", "LINDQVIST", "MORENO")
GIVEN = ("ANNA", "PIETER", "MARIA", "JOHAN", "SOFIA", "LUCAS", "ELENA", "TOMAS")
CT, MR, US = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", \
    "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTI = "1.2.840.10008.5.1.4.1.1.3.1"


# ------------------------------------------------------------------ images

def _ct(rng) -> tuple[np.ndarray, dict]:
    n = 512
    yy, xx = np.mgrid[:n, :n]
    img = rng.normal(-1000, 15, (n, n))
    body = ((xx - n / 2) / 210) ** 2 + ((yy - n / 2) / 160) ** 2 < 1
    img[body] = rng.normal(40, 20, body.sum())
    for cx, cy, r in ((200, 256, 40), (312, 256, 40)):
        lung = (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2 * 3
        img[lung] = rng.normal(-850, 30, lung.sum())
    spine = (xx - 256) ** 2 + (yy - 370) ** 2 < 22 ** 2
    img[spine] = rng.normal(700, 60, spine.sum())
    return img, {"kind": "CT", "lo": -1024, "hi": 3071, "bits": 16, "signed": True}


def _mr(rng) -> tuple[np.ndarray, dict]:
    n = 256
    yy, xx = np.mgrid[:n, :n]
    img = np.abs(rng.normal(0, 20, (n, n)))
    head = ((xx - n / 2) / 100) ** 2 + ((yy - n / 2) / 115) ** 2 < 1
    tissue = 600 + 250 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    img[head] = tissue[head] + rng.normal(0, 40, head.sum())
    return img, {"kind": "MR", "lo": 0, "hi": 4095, "bits": 12, "signed": False}


def _us(rng) -> tuple[np.ndarray, dict]:
    h, w = 480, 640
    yy, xx = np.mgrid[:h, :w]
    angle = np.arctan2(xx - w / 2, yy + 40)
    radius = np.hypot(xx - w / 2, yy + 40)
    fan = (np.abs(angle) < 0.7) & (radius > 80) & (radius < 470)
    img = np.zeros((h, w))
    speckle = rng.rayleigh(45, (h, w)) * (1 - radius / 700)
    img[fan] = np.clip(speckle[fan], 0, 255)
    return img, {"kind": "US", "lo": 0, "hi": 255, "bits": 8, "signed": False}


def _strings(rng) -> list[str]:
    name = f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}"
    day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), \
        int(rng.integers(1930, 2020))
    date = rng.choice([f"{day:02d}.{month:02d}.{year}", f"{year}-{month:02d}-{day:02d}",
                       f"{month:02d}/{day:02d}/{year}"])
    record = rng.choice(["MRN ", "ID: ", "PID "]) + str(int(rng.integers(10**6, 10**8)))
    return [name, str(date), str(record)]


def _text_mask(text: str, font: ImageFont.FreeTypeFont, rotate: int) -> np.ndarray:
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=font, fill=255)
    if rotate:
        canvas = canvas.rotate(rotate, expand=True)
    return np.asarray(canvas, dtype=np.float64) / 255.0


def plant(img: np.ndarray, meta: dict, strings: list[str], rng, size: int,
          rotate: int) -> list[dict]:
    """Burn strings into img (float, in stored values) in place; returns where."""
    h, w = img.shape[:2]
    placed = []
    occupied = np.zeros((h, w), bool)
    spots = ["top-left", "top-right", "bottom-left", "bottom-right", "middle"]
    rng.shuffle(spots)
    for text in strings:
        font = ImageFont.truetype(str(FONT_DIR / rng.choice(FONTS)), size)
        mask = _text_mask(text, font, rotate)
        mh, mw = mask.shape
        if mh >= h or mw >= w:
            continue
        for spot in spots:
            x = {"top-left": 4, "bottom-left": 4, "top-right": w - mw - 4,
                 "bottom-right": w - mw - 4}.get(spot, (w - mw) // 2)
            y = {"top-left": 4, "top-right": 4, "bottom-left": h - mh - 4,
                 "bottom-right": h - mh - 4}.get(spot, (h - mh) // 2)
            # stack several strings in one corner without overlap
            while 0 <= y <= h - mh and occupied[y:y + mh, x:x + mw].any():
                y += mh + 4 if spot.startswith("top") or spot == "middle" else -(mh + 4)
            if 0 <= y <= h - mh and 0 <= x <= w - mw:
                break
        else:
            continue
        occupied[y:y + mh, x:x + mw] = True
        region = img[y:y + mh, x:x + mw]
        contrast = rng.choice(["high", "low", "dark-on-light"])
        lo, hi = meta["lo"], meta["hi"]
        base = float(np.median(region if region.ndim == 2 else region.mean(axis=2)))
        if contrast == "dark-on-light":     # a label: light box, dark letters
            box = lo + 0.85 * (hi - lo)
            region[...] = box if region.ndim == 2 else box
            ink = lo + 0.05 * (hi - lo)
        elif contrast == "low":
            ink = min(hi, base + 0.25 * (hi - lo))
        else:
            ink = hi if meta["kind"] != "CT" else 3071
        if region.ndim == 3:
            colour = np.array(rng.choice([(1, 1, 1), (1, 1, 0), (0, 1, 0), (0, 1, 1)]),
                              dtype=np.float64)
            if contrast == "dark-on-light":
                colour = np.ones(3)
            target = ink * colour if contrast != "dark-on-light" else np.full(3, ink)
            region[...] = region * (1 - mask[..., None]) + target * mask[..., None]
        else:
            region[...] = region * (1 - mask) + ink * mask
        placed.append({"text": text, "x": x, "y": y, "w": mw, "h": mh, "size": size,
                       "rotate": rotate, "contrast": str(contrast), "spot": spot,
                       "_mask": mask > 0.5})
    return placed


def make_object(index: int, rng, with_text: bool) -> tuple[Dataset, list[dict]]:
    kind = ["CT", "MR", "US"][index % 3]
    img, meta = {"CT": _ct, "MR": _mr, "US": _us}[kind](rng)
    rgb = kind == "US" and rng.random() < 0.5
    frames = int(rng.choice([1, 3])) if kind == "US" else 1
    strings = _strings(rng)
    size = int(SIZES[(index // 3) % len(SIZES)])
    rotate = int(rng.choice([0, 90, 270])) if rng.random() < 0.3 else 0
    stack = []
    placements = []
    for f in range(frames):
        frame = np.repeat(img[..., None], 3, axis=2) if rgb else img.copy()
        if f:
            frame = np.roll(frame, 3 * f, axis=1)   # a cine: the anatomy moves
        placed = []
        if with_text:
            text = list(strings)
            if frames > 1:
                text[-1] = f"{text[-1]} {f + 1:02d}"   # a per-frame counter
            placed = plant(frame, meta, text, rng, size, rotate)
        for p in placed:
            p["frame"] = f
        placements += placed
        stack.append(frame)
    arr = np.stack(stack)
    ds = _dataset(index, kind, meta, arr, rgb, frames, strings)
    return ds, placements


def _dataset(index, kind, meta, arr, rgb, frames, strings) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = {"CT": CT, "MR": MR, "US": US_MULTI if frames > 1 else US}[kind]
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = kind
    ds.PatientName, ds.PatientID = strings[0], strings[2]
    ds.PatientBirthDate = re.sub(r"\D", "", strings[1])[:8]
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.InstanceNumber = index + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
    if frames > 1:
        ds.NumberOfFrames = frames
    if rgb:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = meta["bits"]
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.HighBit = bits, bits - 1
    ds.PixelRepresentation = 1 if meta["signed"] else 0
    dtype = np.uint8 if bits == 8 else (np.int16 if meta["signed"] else np.uint16)
    ds.PixelData = np.clip(np.rint(arr), meta["lo"], meta["hi"]).astype(dtype).tobytes()
    return ds


# ------------------------------------------------------------------ reading back

class Reader:
    """The second OCR pass: one planted string's region, read as well as we can."""

    def __init__(self):
        import tesserocr

        from spe_ingest.ocr import tessdata_dir
        self.api = tesserocr.PyTessBaseAPI(path=tessdata_dir() + "/", lang="eng")
        self.modes = (tesserocr.PSM.SINGLE_LINE, tesserocr.PSM.SINGLE_BLOCK)
        self.api.SetVariable("user_defined_dpi", "300")

    def text(self, img8: np.ndarray) -> str:
        out = []
        for psm in self.modes:
            self.api.SetPageSegMode(psm)
            for im in (img8, 255 - img8):
                im = np.ascontiguousarray(im)
                self.api.SetImageBytes(im.tobytes(), im.shape[1], im.shape[0], 1, im.shape[1])
                out.append(self.api.GetUTF8Text())
        return re.sub(r"[^0-9A-Z]+", " ", " ".join(out).upper())

    def readable(self, frame: np.ndarray, p: dict) -> bool:
        from spe_ingest.ocr import to_8bit
        h, w = frame.shape[:2]
        m = max(6, min(p["w"], p["h"]) // 2)
        y0, y1 = max(0, p["y"] - m), min(h, p["y"] + p["h"] + m)
        x0, x1 = max(0, p["x"] - m), min(w, p["x"] + p["w"] + m)
        crop = frame[y0:y1, x0:x1].astype(np.float64)
        if crop.ndim == 3:
            crop = 0.299 * crop[..., 0] + 0.587 * crop[..., 1] + 0.114 * crop[..., 2]
        img8 = to_8bit(crop)
        if p["rotate"] == 90:
            img8 = np.rot90(img8, -1)
        elif p["rotate"] == 270:
            img8 = np.rot90(img8, 1)
        scale = max(1, round(40 / p["size"]))
        if scale > 1:
            img8 = np.asarray(Image.fromarray(np.ascontiguousarray(img8)).resize(
                (img8.shape[1] * scale, img8.shape[0] * scale), Image.BICUBIC))
        words = set(self.text(img8).split())
        tokens = [t for t in re.split(r"[^0-9A-Z]+", p["text"].upper()) if len(t) >= 3]
        return any(t in words for t in tokens)


def _leaks_by(leaks: list[dict]) -> dict:
    """Strings still readable, counted per property (all sizes, and >= 12 px):
    where to look first."""
    out = {}
    for name, rows in (("all", leaks), ("12px_and_up", [r for r in leaks if r["size"] >= 12])):
        out[name] = {prop: dict(sorted({str(v): sum(1 for r in rows if r[prop] == v)
                                        for v in {r[prop] for r in rows}}.items()))
                     for prop in ("size", "contrast", "rotate", "kind", "bits", "rgb", "frames",
                                  "spot")}
    return out


def frames_of(ds: Dataset) -> np.ndarray:
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return arr.reshape(frames, ds.Rows, ds.Columns, -1).squeeze(-1) \
        if ds.SamplesPerPixel == 1 else arr.reshape(frames, ds.Rows, ds.Columns, 3)


# ------------------------------------------------------------------ main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text-images", type=int, default=126)
    ap.add_argument("--clean-images", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="spe-burned-in-"))
    src, dst = work / "src", work / "dst"
    src.mkdir()
    truth: dict[int, dict] = {}
    n = args.text_images + args.clean_images
    for i in range(n):
        with_text = i < args.text_images
        ds, placed = make_object(i, rng, with_text)
        ds.save_as(src / f"{i:05d}.dcm", enforce_file_format=True)
        truth[i + 1] = {"placed": placed, "text": with_text, "kind": ds.Modality,
                        "rgb": ds.SamplesPerPixel == 3,
                        "frames": int(ds.get("NumberOfFrames", 1) or 1),
                        "bits": ds.BitsAllocated,
                        "headers": [ds.PatientName, ds.PatientID]}
    key = work / "key"
    key.write_bytes(os.urandom(64))
    spe = REPO / ".venv" / "bin" / "spe-ingest"
    cmd = [str(spe) if spe.exists() else "spe-ingest", "run", str(src), str(dst),
           "--key-file", str(key), "--site", "BENCH", "--project", "BENCH",
           "--option", "clean-pixel-data", "--workers", str(args.workers)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return 1
    report = json.loads((dst / "report.json").read_text())

    outputs: dict[int, Path] = {}
    for path in dst.rglob("*.dcm"):
        outputs[int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber)] = path
    reader = Reader()
    by_size: dict[int, dict] = {}
    fp_images, leaks, header_leaks = 0, [], []
    ink_total = ink_blanked = 0
    missing = 0
    for number, t in sorted(truth.items()):
        src_ds = pydicom.dcmread(src / f"{number - 1:05d}.dcm")
        before = frames_of(src_ds)
        path = outputs.get(number)
        if path is None:
            missing += 1
            continue
        raw = path.read_bytes()
        for s in t["headers"]:
            if str(s).encode() in raw:
                header_leaks.append(str(s))
        out_ds = pydicom.dcmread(path)
        after = frames_of(out_ds)
        changed = np.any((before != after).reshape(before.shape[0], before.shape[1],
                                                   before.shape[2], -1), axis=3)
        if not t["text"]:
            fp_images += bool(changed.any())
            continue
        for p in t["placed"]:
            stats = by_size.setdefault(p["size"], {"planted": 0, "readable_in_input": 0,
                                                   "readable_in_output": 0})
            stats["planted"] += 1
            readable_before = reader.readable(before[p["frame"]], p)
            stats["readable_in_input"] += readable_before
            if reader.readable(after[p["frame"]], p):
                stats["readable_in_output"] += 1
                leaks.append({k: p[k] for k in ("size", "rotate", "contrast", "spot", "frame")}
                             | {"kind": t["kind"], "rgb": t["rgb"], "bits": t["bits"],
                                "frames": t["frames"], "object": number,
                                "readable_in_input": readable_before})
            mask = p["_mask"]
            region = changed[p["frame"], p["y"]:p["y"] + p["h"], p["x"]:p["x"] + p["w"]]
            ink_total += int(mask.sum())
            ink_blanked += int((region & mask).sum())

    def recall(rows):
        planted = sum(r["planted"] for r in rows)
        left = sum(r["readable_in_output"] for r in rows)
        return {"planted": planted, "readable_in_input": sum(r["readable_in_input"] for r in rows),
                "still_readable": left,
                "recall": round(1 - left / planted, 4) if planted else None}

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "objects": {"with_text": args.text_images, "clean": args.clean_images,
                    "frames": sum(t["frames"] for t in truth.values()),
                    "missing_in_output": missing},
        "ingest": {"seconds": round(seconds, 1), "files_per_second": round(n / seconds, 2),
                   "frames_per_second": round(sum(t["frames"] for t in truth.values())
                                              / seconds, 2),
                   "workers": args.workers, "counts": report["counts"],
                   "outcomes": report["outcomes"],
                   "pixel_text": report.get("pixel_text", {}).get("counts")},
        "recall_by_size": {str(k): recall([v]) for k, v in sorted(by_size.items())},
        "recall_all": recall(list(by_size.values())),
        "recall_12px_and_up": recall([v for k, v in by_size.items() if k >= 12]),
        "ink_blanked_share": round(ink_blanked / ink_total, 4) if ink_total else None,
        "false_positive_images": fp_images,
        "false_positive_share": round(fp_images / args.clean_images, 4)
        if args.clean_images else None,
        "leaks_in_pixels": leaks,
        "leaks_by": _leaks_by(leaks),
        "leaks_in_headers": header_leaks,
    }
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"burned-in-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "leaks_in_pixels"}, indent=1))
    print(f"leaks in pixels: {len(leaks)}; results: {out}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
