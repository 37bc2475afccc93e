"""Hostile and broken input: truncated headers, corrupt containers, random bytes behind
magic numbers. The engine must never raise; it reports what it can."""

from __future__ import annotations

import random

import pytest

from spe_egress.checks import CheckContext, CheckPolicy, FileInput, run_checks

from .test_checks_images import IMAGE_CASES
from .test_checks_sniff import SNIFF_CASES

pytestmark = pytest.mark.egress

SAMPLES = [(c[0], c[1]) for c in SNIFF_CASES] + [(c[0], c[2]) for c in IMAGE_CASES]
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"PK\x03\x04", b"\x1f\x8b", b"%PDF-",
          b"\x80\x04", b"\x08\x07", b"\x93NUMPY", b"\x02\x00\x00\x00UL", b"\x5c\x01\x00\x00", b"MZ"]


@pytest.mark.parametrize("name,data", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_truncated_files_never_raise(name, data):
    policy = CheckPolicy(allowed_types=["png", "jpeg", "tiff", "pdf", "csv", "txt"])
    cuts = sorted({1, 4, 9, 13, 40, 131, 200, 349, len(data) // 2, max(len(data) - 3, 0)})
    files = [FileInput(f"{name}-{n}.bin", data[:n]) for n in cuts if n <= len(data)]
    report = run_checks(files, policy, CheckContext(pseudonymous_ids={"x-1"}))
    assert len(report.files) == len(files)


def test_random_bytes_behind_magic_numbers_never_raise():
    rng = random.Random(20261121)
    files = [FileInput(f"f{i}.png", magic + rng.randbytes(rng.randint(0, 600)))
             for i, magic in enumerate(MAGICS * 8)]
    report = run_checks(files, CheckPolicy())
    assert len(report.files) == len(files)


def test_ragged_and_odd_csv_never_raises():
    text = 'a,b\n1\n"unterminated,2\n,,,,,,\n\ufeffx,y,z,w\n' + "é" * 50 + "\n"
    report = run_checks([FileInput("t.csv", text.encode("utf-8")), FileInput("e.csv", b""),
                         FileInput("h.csv", b"only,a,header\n"), FileInput("l.csv", "a;b\n1,5;2\n".encode("latin-1"))])
    assert len(report.files) == 4 and report.files[2].verdict == "pass"
