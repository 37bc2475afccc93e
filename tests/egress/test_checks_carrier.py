"""Images as data carriers are blocked with the reason; figures of ordinary proportions,
colour bars, plots and heatmaps are not."""

from __future__ import annotations

import io
import random
import zipfile

import numpy as np
import pytest

from spe_egress.checks import CheckPolicy, FileInput, Severity, run_checks

from .corpus import colour_bar, plot_png, png

pytestmark = pytest.mark.egress
POLICY = CheckPolicy(allowed_types=["png", "gif", "tiff", "bmp", "webp", "jpeg"])


def carrier(name: str, data: bytes):
    report = run_checks([FileInput(name, data)], POLICY)
    return [f for f in report.files[0].findings if f.check == "image.carrier"], report


def as_pixels(payload: bytes, mode: str = "RGB") -> bytes:
    bands = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    side = int(np.ceil(np.sqrt(len(payload) / bands)))
    return png(mode=mode, size=(side, side), raw=payload.ljust(side * side * bands, b"\0"))


def zipped() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("cohort.csv", "".join(f"P{i:04d},{random.Random(i).randint(20, 90)}\n" for i in range(500)))
    return buf.getvalue()


@pytest.mark.parametrize("name,data,reason,severity", [
    ("one pixel wide", png(np.random.default_rng(1).integers(0, 255, (5000, 1), dtype=np.uint8)),
     "degenerate-geometry", Severity.BLOCK),
    ("two pixels high", png(np.full((2, 800, 3), 90, dtype=np.uint8)), "degenerate-geometry", Severity.BLOCK),
    ("aspect 100:1", png(np.full((20, 2000), 90, dtype=np.uint8)), "aspect-ratio", Severity.BLOCK),
    ("side over 20000", png(np.zeros((8, 21000), dtype=np.uint8)), "implausible-size", Severity.BLOCK),
    ("zip in RGB pixels", as_pixels(zipped()), "payload", Severity.BLOCK),
    ("zip in RGBA pixels", as_pixels(zipped(), "RGBA"), "payload", Severity.BLOCK),
    ("PDF in grey pixels", as_pixels(b"%PDF-1.7\n" + bytes(range(256)) * 40, "L"), "payload", Severity.BLOCK),
    ("CSV text in pixels", as_pixels("".join(f"P{i:04d},{i % 90},{'MF'[i % 2]}\n" for i in range(5000)).encode(), "L"),
     "payload", Severity.BLOCK),
    ("random pixels", png(np.random.default_rng(2).integers(0, 256, (200, 200, 3), dtype=np.uint8)),
     "random-pixels", Severity.WARN),
])
def test_carriers_are_caught_with_the_reason(name, data, reason, severity):
    found, report = carrier(name + ".png", data)
    assert any(f.location["reason"] == reason and f.severity is severity for f in found), [f.message for f in found]
    f = next(f for f in found if f.location["reason"] == reason)
    assert {"width", "height"} <= f.location.keys()
    if reason not in ("payload", "random-pixels"):
        assert f"{f.location['width']} × {f.location['height']}" in f.message
    if reason == "payload":
        assert "hidden in pixels" in f.message or "read as text" in f.message


def test_payload_in_other_lossless_formats():
    from PIL import Image
    payload = zipped()
    side = int(np.ceil(np.sqrt(len(payload) / 3)))
    im = Image.frombytes("RGB", (side, side), payload.ljust(side * side * 3, b"\0"))
    for fmt in ("TIFF", "BMP", "WEBP"):
        buf = io.BytesIO()
        im.save(buf, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        found, _ = carrier("x." + fmt.lower(), buf.getvalue())
        assert any(f.location.get("payload_type") == "zip" for f in found), fmt


@pytest.mark.parametrize("name,data", [
    ("colour bar", colour_bar()),
    ("horizontal colour bar", colour_bar(600, 30)),
    ("plot", plot_png()),
    ("heatmap", png((np.add.outer(np.linspace(0, 1, 300), np.linspace(0, 1, 400)) * 200).astype(np.uint8))),
    ("photo-like", png((np.clip(np.random.default_rng(4).normal(0, 6, (240, 320)).cumsum(axis=1) + 128, 0, 255))
                       .astype(np.uint8))),
    ("white canvas", png(np.full((600, 800, 3), 255, dtype=np.uint8))),
    ("tall figure 1:4", png(np.full((1600, 400, 3), 240, dtype=np.uint8))),
])
def test_ordinary_figures_are_not_carriers(name, data):
    found, report = carrier(name + ".png", data)
    assert found == [] and report.verdict == "pass", [f.message for f in found]


def test_jpeg_is_checked_for_geometry_only():
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.full((2, 900, 3), 128, dtype=np.uint8)).save(buf, "JPEG")
    found, _ = carrier("s.jpg", buf.getvalue())
    assert [f.location["reason"] for f in found] == ["degenerate-geometry"]


def test_undecodable_image_is_not_a_crash():
    found, report = carrier("bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert found == [] and report.files[0].detected_type == "png"
