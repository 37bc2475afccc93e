"""The labelled corpus (tests/egress/corpus.py): every risky case is caught by its detector at
the severity it needs, no benign case is blocked, and no detector raises a WARN or BLOCK on a
benign case. ``python -m tests.egress.corpus`` prints the same figures per detector."""

from __future__ import annotations

import pytest

from spe_egress.checks import FileInput, run_checks

from . import corpus

pytestmark = pytest.mark.egress


@pytest.mark.parametrize("case", corpus.risky(), ids=lambda c: c.name)
def test_risky_case_is_caught(case):
    report = run_checks([FileInput(case.file, case.data)], corpus.POLICY)
    worst = max((f.severity.rank for f in report.files[0].findings if f.check == case.detector), default=-1)
    assert worst >= case.at_least.rank, [(f.check, f.severity.value, f.message) for f in report.files[0].findings]


@pytest.mark.parametrize("case", corpus.benign(), ids=lambda c: c.name)
def test_benign_case_is_not_blocked(case):
    report = run_checks([FileInput(case.file, case.data)], corpus.POLICY)
    assert report.verdict != "block", [(f.check, f.message) for f in report.files[0].findings]
    noisy = [f for f in report.files[0].findings if f.check in corpus.DETECTORS and f.severity.value != "info"]
    assert noisy == [], [(f.check, f.message) for f in noisy]


def test_figures_per_detector():
    figures = corpus.evaluate()
    assert set(figures) == set(corpus.DETECTORS)
    for detector, f in figures.items():
        assert f["risky"] >= 1, detector
        assert f["caught"] == f["risky"] and f["false_positives"] == 0 and f["benign_blocked"] == 0, (detector, f)
    assert len(corpus.benign()) >= 20


def test_random_numbers_are_rarely_national_ids():
    rates = corpus.random_number_rates(500)
    assert max(rates.values()) < 0.06  # the weakest strong scheme, the DNI letter, passes 1 in 23
    assert rates["9 digits"] == rates["10 digits"] == 0  # BSN, NHS, NIF need context
