"""The reviewer page shows the new findings with their evidence: the record-level evidence as
a list, the flagged column headers, the excerpt of a document's text with the hit marked.
Rendered from the gateway's own template with real check reports; then shown in headless
Chromium (tests/fixtures/browser.py)."""

from __future__ import annotations

import html
import re

import pytest

from spe_egress import render
from spe_egress.checks import CheckPolicy, FileInput, run_checks
from spe_egress.web import TEMPLATES

from .corpus import csv, pdf

pytestmark = pytest.mark.egress

ROWS = [[f"P{i:03d}", 40 + i % 30, "MF"[i % 2], round(3 + i / 7, 1), i % 2] for i in range(30)]
TABLE = csv(["patient_id", "age", "sex", "os_months", "event"], ROWS)
REPORT_PDF = pdf(["Case discussed with Dr. Müller.", "Patient BSN 111222333 consented."])


def page_html() -> str:
    files = [("cohort.csv", TABLE), ("case.pdf", REPORT_PDF)]
    report = run_checks([FileInput(n, d) for n, d in files],
                        CheckPolicy(allowed_types=["csv", "pdf"])).to_dict()
    entries = []
    for i, (name, data) in enumerate(files):
        fr = report["files"][i]
        entry = {"index": i, "name": name, "size": len(data), "sha256": fr["sha256"], "verdict": fr["verdict"],
                 "findings": fr["findings"], "kind": render.kind_of(name, data), "view": None}
        if entry["kind"] == "table":
            entry["view"] = render.render_table(name, data, fr["findings"])
        entries.append(entry)
    obj = {"metadata": {"name": "er-1", "namespace": "spe-p"},
           "spec": {"requester": "anna", "workspace": "ws", "justification": "Cohort table for the paper."}}
    st = {"phase": "AwaitingReview", "permit": "p", "reviewersRequired": 2, "checks": {"verdict": report["verdict"]},
          "history": []}
    return TEMPLATES.env.get_template("detail.html").render(
        r=obj, st=st, files=entries, round=1, voted=False, can_vote=True, decisions=[], message=None,
        user={"name": "Rita Reviewer", "username": "rita"}, csrf="t")


def test_template_shows_evidence_excerpts_and_flagged_headers():
    text = page_html()
    evidence = re.search(r'<ul class="evidence" data-testid="evidence">(.*?)</ul>', text, re.S)
    assert evidence, "record-level evidence list missing"
    items = [html.unescape(x) for x in re.findall(r"<li>(.*?)</li>", evidence.group(1))]
    assert any(i.startswith("id-column: column 'patient_id' is named like a person identifier") for i in items)
    assert any(i.startswith("survival-pair: time-to-event column 'os_months'") for i in items)
    assert re.search(r'<th class="flag flag-BLOCK" data-flagged="BLOCK">patient_id</th>', text)
    assert re.search(r'<th class="flag flag-BLOCK" data-flagged="BLOCK">os_months</th>', text)
    excerpts = [html.unescape(m) for m in re.findall(r'<mark class="flag flag-BLOCK">(.*?)</mark>', text)]
    assert "111222333" in excerpts
    assert 'data-check="identifier.national-id"' in text and 'data-check="sdc.record-level"' in text
    assert "page=1" in text and "excerpt=" not in text  # the excerpt is shown as text, not as key=value


def test_template_escapes_document_text():
    hostile = pdf(["<script>alert(1)</script> BSN 111222333"])
    report = run_checks([FileInput("x.pdf", hostile)], CheckPolicy()).to_dict()
    fr = report["files"][0]
    text = TEMPLATES.env.get_template("detail.html").render(
        r={"metadata": {"name": "er-2", "namespace": "n"}, "spec": {"requester": "a", "workspace": "w",
                                                                    "justification": "j" * 12}},
        st={"phase": "AwaitingReview", "history": []}, round=1, voted=False, can_vote=False, decisions=[],
        files=[{"index": 0, "name": "x.pdf", "size": 1, "sha256": fr["sha256"], "verdict": fr["verdict"],
                "findings": fr["findings"], "kind": "binary", "view": None}], message=None, user=None, csrf="t")
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text


@pytest.mark.asyncio(loop_scope="session")
async def test_findings_render_in_chromium(browser, tmp_path):
    page = await browser.new_page()
    try:
        await page.set_content(page_html())
        evidence = await page.locator("[data-testid=evidence] li").all_inner_texts()
        assert any("patient_id" in e for e in evidence) and any("os_months" in e for e in evidence)
        flagged = await page.locator("th[data-flagged=BLOCK]").all_inner_texts()
        assert {"patient_id", "os_months"} <= set(flagged)
        marks = await page.locator("[data-testid=excerpt] mark").all_inner_texts()
        assert "111222333" in marks and "Dr. Müller" in marks
        assert await page.locator("[data-testid=excerpt]").first.is_visible()
        await page.screenshot(path=str(tmp_path / "findings.png"), full_page=True)
        assert (tmp_path / "findings.png").stat().st_size > 1000
    finally:
        await page.close()
