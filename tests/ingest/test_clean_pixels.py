"""The Clean Pixel Data option: burned-in text found by Tesseract and blanked.

Real Tesseract (Debian's English data, scripts/deps.d/tesseract.sh) on images
with text rendered in Debian's DejaVu fonts.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from spe_ingest.deid import Deidentifier
from spe_ingest.keys import Keys, domain_key
from spe_ingest.profile import compile_profile
from spe_ingest.rules import OPTIONS

from .conftest import ingest, to_bytes, write_tree

pytestmark = pytest.mark.ingest

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
US_CLASS = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTI = "1.2.840.10008.5.1.4.1.1.3.1"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
NAME, DATE, MRN = "KOWALSKI^ANNA", "1961-04-17", "MRN 48213377"


def _deid(options=("clean-pixel-data",)):
    return Deidentifier(compile_profile("basic", options),
                        Keys(domain_key(b"k" * 32, "P", "S")), "S")


def _text(img: np.ndarray, xy, text: str, size: int, value, rotate: int = 0) -> np.ndarray:
    """Draw text (anti-aliased) into img in place; returns the mask of its visible ink
    (pixels at least a third covered)."""
    font = ImageFont.truetype(FONT, size)
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=font, fill=255)
    if rotate:
        canvas = canvas.rotate(rotate, expand=True)
    alpha = np.asarray(canvas, dtype=np.float64) / 255.0
    x, y = xy
    h, w = alpha.shape
    region = img[y:y + h, x:x + w]
    a = alpha if region.ndim == 2 else alpha[..., None]
    region[...] = np.rint(region * (1 - a) + np.asarray(value, dtype=np.float64) * a)
    mask = np.zeros(img.shape[:2], bool)
    mask[y:y + h, x:x + w] = alpha >= 1 / 3
    return mask


def _speckle(rng, rows=240, cols=320) -> np.ndarray:
    return np.clip(rng.rayleigh(40, (rows, cols)), 0, 200)   # saturating, like real scanners


def _image(frames: np.ndarray, *, sop_class=US_CLASS, photometric="MONOCHROME2", bits=8,
           signed=False, sop="1.2.3.4.5", **extra) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "US" if sop_class != CT_CLASS else "CT"
    ds.PatientName, ds.PatientID = NAME, "48213377"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.4"
    n, rows, cols = frames.shape[:3]
    ds.Rows, ds.Columns = rows, cols
    if n > 1:
        ds.NumberOfFrames = n
    if frames.ndim == 4:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = int(signed)
    dtype = {8: np.uint8, 16: np.int16 if signed else np.uint16}[bits]
    ds.PixelData = np.rint(frames).astype(dtype).tobytes()
    for k, v in extra.items():
        setattr(ds, k, v)
    return ds


def _run(ds: Dataset, options=("clean-pixel-data",)):
    res = _deid(options).run(to_bytes(ds))
    out = pydicom.dcmread(io.BytesIO(res.data)) if res.data else None
    return res, out


def _frames(ds: Dataset) -> np.ndarray:
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return arr.reshape((n, ds.Rows, ds.Columns) + (() if ds.SamplesPerPixel == 1 else (3,)))


def _assert_only_boxes_changed(before: np.ndarray, after: np.ndarray, regions, frame: int,
                               black) -> np.ndarray:
    """Pixels inside the frame's boxes are black; every other pixel is unchanged."""
    inside = np.zeros(before.shape[:2], bool)
    for r in regions:
        if r["frame"] == frame:
            x, y, w, h = r["box"]
            inside[y:y + h, x:x + w] = True
    assert np.all(after[inside] == black)
    assert np.array_equal(after[~inside], before[~inside])
    return inside


def test_text_is_blanked_black_and_every_other_pixel_is_byte_identical():
    rng = np.random.default_rng(1)
    img = _speckle(rng)
    ink = _text(img, (6, 6), NAME, 16, 255)
    ink |= _text(img, (6, 200), DATE, 12, 255)
    ink |= _text(img, (300, 40), MRN, 14, 255, rotate=90)    # vertical, along the edge
    ds = _image(img[None])
    res, out = _run(ds)
    assert res.outcome == "accepted" and res.pixel_check == "cleaned"
    before, after = np.rint(img).astype(np.uint8), _frames(out)[0]
    inside = _assert_only_boxes_changed(before, after, res.pixel_regions, 0, before.min())
    assert inside[ink].all()                         # every pixel of the text is gone
    assert inside.mean() < 0.25                      # and not much else
    for r in res.pixel_regions:
        assert set(r) == {"frame", "box", "confidence"} and 0 < r["confidence"] <= 100
    # PS3.15: Burned In Annotation NO once cleaned, the option's code in the method
    assert out.BurnedInAnnotation == "NO"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113101"]
    assert "clean-pixel-data" in out.DeidentificationMethod


def test_sixteen_bit_signed_ct_is_blanked_with_its_minimum():
    rng = np.random.default_rng(2)
    img = rng.normal(-1000, 12, (256, 256))
    img[60:200, 40:220] = rng.normal(40, 15, (140, 180))
    ink = _text(img, (4, 4), NAME, 14, 3071)
    ink |= _text(img, (60, 120), DATE, 16, 400)      # low contrast, on the body
    ds = _image(img[None], sop_class=CT_CLASS, bits=16, signed=True)
    res, out = _run(ds)
    assert res.pixel_check == "cleaned"
    before = np.rint(img).astype(np.int16)
    after = _frames(out)[0]
    inside = _assert_only_boxes_changed(before, after, res.pixel_regions, 0, before.min())
    assert inside[ink].all()


def test_faint_text_whose_value_fills_the_anatomy_is_blanked():
    """Low-contrast text drawn with a value that is common in the anatomy
    elsewhere in the frame (most of that value's pixels are not text), just
    under a bright line of text: found by its share of ink around it, read
    windowed between its ink and its background."""
    rng = np.random.default_rng(6)
    img = rng.normal(-1000, 15, (320, 320))
    img[20:220, 60:300] = rng.normal(24, 20, (200, 240))    # tissue around the ink value
    ink = _text(img, (4, 268), NAME, 20, 24)                # faint, on air
    bright = _text(img, (4, 244), DATE, 20, 3071)           # bright, right above it
    ds = _image(img[None], sop_class=CT_CLASS, bits=16, signed=True)
    before = np.rint(img).astype(np.int16)
    faint_value = int((before == 24).sum())
    assert (before[ink] == 24).sum() < 0.4 * faint_value     # the frame alone would not say "text"
    res, out = _run(ds)
    assert res.pixel_check == "cleaned"
    after = _frames(out)[0]
    inside = _assert_only_boxes_changed(before, after, res.pixel_regions, 0, before.min())
    assert inside[ink].all() and inside[bright].all()
    assert not inside[20:220, 60:300].any()                   # the tissue is untouched


def test_a_confirmed_line_is_lengthened_over_the_rest_of_its_ink_only():
    """Small text leaves few pixels of pure ink, mostly alone: the box of a
    confirmed word grows along its line over pixels of that ink that stand
    out, across gaps of up to two line heights, and no further."""
    from spe_ingest.ocr import _along_ink
    from spe_ingest.textcandidates import contrasted
    grey = np.zeros((60, 200), np.float32)
    box = (60, 10, 30, 12)                       # the confirmed word, 12 px high
    for x in (62, 70, 88, 100, 118, 140, 190):   # pure-ink pixels along its line
        grey[15, x] = 500.0
    x, y, w, h = _along_ink(grey, contrasted(grey), box, {500.0})
    assert (y, h) == (10, 12)
    assert x == 60 and x + w == 141              # 100, 118, 140 joined; 190 too far
    tall = _along_ink(grey.T.copy(), contrasted(grey.T.copy()), (10, 60, 12, 30), {500.0})
    assert tall == (10, 60, 12, 81)              # the same, upright
    assert _along_ink(grey, contrasted(grey), box, {123.0}) == box


def test_a_run_of_confident_letters_confirms_text_that_its_word_does_not():
    """Tesseract may give a whole word a low confidence for one odd symbol
    (a name with its '^' in DejaVu Serif: every letter at ~99, the word
    near 0); five confident letters or digits in a row confirm the box,
    fewer do not (speckle reads as runs of three)."""
    from spe_ingest.ocr import TextFinder
    finder = TextFinder()
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 40)

    def run_confidence(text: str) -> float:
        canvas = Image.new("L", (520, 80), 255)
        ImageDraw.Draw(canvas).text((20, 15), text, font=font, fill=0)
        img = np.ascontiguousarray(np.asarray(canvas))
        api = finder._tess()
        api.SetImageBytes(img.tobytes(), img.shape[1], img.shape[0], 1, img.shape[1])
        api.Recognize()
        return finder._run_confidence(api.GetIterator(), np.ones(img.shape, bool))

    try:
        assert run_confidence("MUELLER^JOHAN") >= 60
        assert run_confidence("AB^CDE-F") == 0
    finally:
        finder.close()


def test_rgb_text_is_blanked_to_black():
    rng = np.random.default_rng(3)
    img = np.repeat(_speckle(rng)[..., None], 3, axis=2)
    ink = _text(img, (10, 10), NAME, 16, (255, 255, 0))
    res, out = _run(_image(img[None]))
    before, after = np.rint(img).astype(np.uint8), _frames(out)[0]
    inside = _assert_only_boxes_changed(before, after, res.pixel_regions, 0, 0)
    assert inside[ink].all()


def test_multiframe_ultrasound_is_cleaned_frame_by_frame():
    rng = np.random.default_rng(4)
    base = _speckle(rng)
    frames, inks = [], []
    for f in range(3):
        img = np.roll(base, 4 * f, axis=1).copy()
        ink = _text(img, (8, 8 + 60 * f), f"{MRN} {f + 1:02d}", 14, 255) if f != 1 else \
            np.zeros(img.shape, bool)
        frames.append(img)
        inks.append(ink)
    stack = np.stack(frames)
    res, out = _run(_image(stack, sop_class=US_MULTI))
    assert res.pixel_check == "cleaned"
    after = _frames(out)
    assert {r["frame"] for r in res.pixel_regions} == {0, 2}
    for f in range(3):
        before = np.rint(stack[f]).astype(np.uint8)
        inside = _assert_only_boxes_changed(before, after[f], res.pixel_regions, f, before.min())
        assert inside[inks[f]].all()
    assert np.array_equal(after[1], np.rint(stack[1]).astype(np.uint8))     # no text: untouched


def test_clean_image_is_unchanged_examined_and_not_marked_cleaned(ct_bytes):
    ds = pydicom.dcmread(io.BytesIO(ct_bytes))
    res, out = _run(ds)
    assert res.outcome == "accepted" and res.pixel_check == "clean" and not res.pixel_regions
    assert out.PixelData == ds.PixelData
    assert "BurnedInAnnotation" not in out
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100", "113101"]


def test_burned_in_annotation_yes_is_accepted_only_once_cleaned():
    rng = np.random.default_rng(5)
    img = _speckle(rng)
    _text(img, (6, 6), NAME, 16, 255)
    res, out = _run(_image(img[None], BurnedInAnnotation="YES"))
    assert (res.outcome, res.reason) == ("accepted", "") and out.BurnedInAnnotation == "NO"
    # the header says text, OCR finds none: a person has to look
    res, out = _run(_image(_speckle(rng)[None], BurnedInAnnotation="YES"))
    assert (res.outcome, res.reason) == ("quarantined", "burned-in-annotation")
    assert out.BurnedInAnnotation == "YES"


def test_compressed_object_with_text_is_quarantined_not_passed_through():
    rng = np.random.default_rng(6)
    img = _speckle(rng)
    _text(img, (6, 6), NAME, 16, 255)
    ds = _image(img[None])
    ds.compress(RLELossless)
    res, out = _run(ds)
    assert (res.outcome, res.reason) == ("quarantined", "burned-in-text-not-rewritable")
    assert res.pixel_check == "text-not-rewritable" and res.pixel_regions
    assert res.relpath.startswith("quarantine/")
    assert "BurnedInAnnotation" not in out or out.BurnedInAnnotation != "NO"
    # a compressed image without text: examined, passed unchanged
    clean = _image(_speckle(rng)[None], sop="1.2.3.4.6")
    clean.compress(RLELossless)
    res, out = _run(clean)
    assert (res.outcome, res.pixel_check) == ("accepted", "clean")
    assert out.PixelData == clean.PixelData


def test_pixels_that_cannot_be_examined_are_quarantined():
    ds = _image(np.zeros((1, 16, 16)), photometric="PALETTE COLOR")
    res, _ = _run(ds)
    assert (res.outcome, res.reason) == ("quarantined", "pixel-data-not-examinable")
    assert res.pixel_check == "not-examinable"


def test_without_the_option_pixels_are_never_touched():
    rng = np.random.default_rng(7)
    img = _speckle(rng)
    _text(img, (6, 6), NAME, 16, 255)
    ds = _image(img[None])
    res, out = _run(ds, options=())
    assert res.pixel_check == "" and out.PixelData == ds.PixelData
    assert "113101" not in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]


def test_report_and_manifest_carry_the_boxes_never_the_text(tmp_path, key_file):
    rng = np.random.default_rng(8)
    img = _speckle(rng)
    _text(img, (6, 6), NAME, 16, 255)
    _text(img, (6, 200), MRN, 14, 255)
    dirty = _image(img[None], sop="1.2.3.4.1")
    plain = _image(_speckle(rng)[None], sop="1.2.3.4.2")
    compressed = _image(img[None].copy(), sop="1.2.3.4.3")
    compressed.compress(RLELossless)
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_tree(src, [("a.dcm", dirty), ("b.dcm", plain), ("c.dcm", compressed)])
    assert ingest(src, dst, key_file, "--option", "clean-pixel-data", workers=2) == 0
    report = json.loads((dst / "report.json").read_text())
    manifest = json.loads((dst / "manifest.json").read_text())["manifest"]
    px = report["pixel_text"]
    assert px["counts"]["examined"] == 3 and px["counts"]["cleaned"] == 1
    assert px["counts"]["text-not-rewritable"] == 1 and px["counts"]["clean"] == 1
    by_path = {o["path"]: o for o in px["objects"]}
    files = {f["path"]: f for f in manifest["files"]}
    assert len(by_path) == 2
    for path, obj in by_path.items():
        assert obj["regions"] and files[path]["pixel_text"] == obj["regions"]
        for r in obj["regions"]:
            x, y, w, h = r["box"]
            assert r["frame"] == 0 and w > 0 and h > 0
    assert report["outcomes"]["quarantined"] == {"burned-in-text-not-rewritable": 1}
    assert "clean-pixel-data" in manifest["options"]
    for doc in ((dst / "report.json").read_text(), (dst / "manifest.json").read_text()):
        for s in (NAME, "KOWALSKI", "48213377", "1961"):
            assert s not in doc


def _spe(env_extra: dict, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_tesseract_missing_fails_at_start_with_what_to_install(tmp_path, key_file):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_tree(src, [("a.dcm", _image(np.zeros((1, 8, 8))))])
    common = ["run", str(src), str(dst), "--key-file", str(key_file), "--site", "S",
              "--project", "P", "--option", "clean-pixel-data"]
    proc = _spe({"SPE_TESSDATA": str(tmp_path / "no-tessdata")}, "-m", "spe_ingest.cli", *common)
    assert proc.returncode == 2
    assert "tesseract-ocr-eng" in proc.stderr and "eng.traineddata" in proc.stderr
    assert not dst.exists()
    # the binding itself missing
    code = ("import sys; sys.modules['tesserocr'] = None; from spe_ingest.cli import main; "
            f"raise SystemExit(main({common!r}))")
    proc = _spe({}, "-c", code)
    assert proc.returncode == 2 and "tesserocr" in proc.stderr
    assert not dst.exists()
    # without the option the same tree ingests without Tesseract
    proc = _spe({"SPE_TESSDATA": str(tmp_path / "no-tessdata")}, "-m", "spe_ingest.cli",
                *common[:-2])
    assert proc.returncode == 0, proc.stderr


def test_every_dataset_option_but_one_is_an_ingest_option():
    from spe_api.dataset import AnonymisationOption
    names = {o.value for o in AnonymisationOption}
    assert names - set(OPTIONS) == {"clean-recognizable-visual-features"}
    assert "clean-pixel-data" in OPTIONS
