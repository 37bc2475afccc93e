"""Documents: text extracted from PDF, Word, PowerPoint and spreadsheets goes through the text
and table checks; embedded files and macros are blocked, embedded images flagged and checked."""

from __future__ import annotations

import pytest

from spe_egress.checks import CheckPolicy, FileInput, Severity, run_checks

from .corpus import (add_zip_member, docx, image_output, notebook, pdf, plot_png, png, pptx, xlsx, zip_bytes)

pytestmark = pytest.mark.egress
POLICY = CheckPolicy(allowed_types=["pdf", "office", "ipynb", "svg", "html"])


def findings(name: str, data: bytes, policy: CheckPolicy = POLICY):
    report = run_checks([FileInput(name, data)], policy)
    return report, {(f.check, f.severity) for f in report.files[0].findings}, report.files[0].findings


def test_pdf_text_is_extracted_and_checked_by_page():
    data = pdf(["Summary of the cohort.", "Patient born 12.03.1954, BSN 111222333."])
    report, got, fs = findings("r.pdf", data)
    assert report.verdict == "block"
    assert ("identifier.date-of-birth", Severity.BLOCK) in got and ("identifier.national-id", Severity.BLOCK) in got
    dob = next(f for f in fs if f.check == "identifier.date-of-birth")
    assert dob.location["page"] == 1 and dob.location["excerpt"][1] == "12.03.1954"
    assert "page 1" in dob.message
    content = next(f for f in fs if f.check == "document.content")
    assert content.severity is Severity.INFO and content.location["pages"] == 1


def test_pdf_of_a_plot_passes():
    report, got, fs = findings("auc.pdf", pdf(["Validation AUC by epoch (n = 412)"], plot=True))
    assert report.verdict == "pass", [f.message for f in fs]


def test_pdf_with_an_attachment_is_blocked():
    report, got, _ = findings("r.pdf", pdf(["See attachment."], attach=b"patient_id,age\nP1,54\n"))
    assert ("document.active-content", Severity.BLOCK) in got and report.verdict == "block"


def test_pdf_images_are_flagged_and_checked_as_images():
    _, got, fs = findings("fig.pdf", pdf(["Figure 1"], image=plot_png(320, 240)))
    assert ("document.embedded-image", Severity.WARN) in got
    assert not any(f.check == "image.carrier" for f in fs)
    strip = png(__import__("numpy").random.default_rng(0).integers(0, 255, (3000, 1), dtype="uint8"))
    report, got, fs = findings("fig.pdf", pdf(["Figure 2"], image=strip))
    carrier = [f for f in fs if f.check == "image.carrier" and f.severity is Severity.BLOCK]
    assert carrier and carrier[0].location["page"] == 1 and report.verdict == "block"


def test_unparseable_pdf_is_still_checked_for_embedded_files():
    data = b"%PDF-1.4\n1 0 obj\n<< /Type /EmbeddedFile >>\nendobj\n%%EOF\n"
    _, got, fs = findings("broken.pdf", data)
    assert ("document.active-content", Severity.BLOCK) in got
    assert any(f.check == "document.content" and "could not be extracted" in f.message for f in fs)


def test_spreadsheet_sheets_go_through_the_table_checks():
    rows = [[f"S{i:03d}", 40 + i, i % 2] for i in range(30)]
    report, got, fs = findings("patients.xlsx", xlsx(["subject_id", "age", "event"], rows))
    rl = [f for f in fs if f.check == "sdc.record-level"]
    assert rl and rl[0].severity is Severity.BLOCK and rl[0].location["sheet"] == "Sheet1"
    report, got, fs = findings("small.xlsx", xlsx(["site", "n"], [["A", 3], ["B", 40]]))
    small = [f for f in fs if f.check == "sdc.threshold"]
    assert [(f.location["sheet"], f.location["row"], f.location["column"]) for f in small] == [("Sheet1", 0, "n")]
    report, _, fs = findings("ok.xlsx", xlsx(["site", "patients"], [["A", 130], ["B", 120]]))
    assert report.verdict == "pass", [f.message for f in fs]


def test_word_text_and_tables_are_checked():
    data = docx(["Letter about Jan de Vries, NHS number 943 476 5919."], table=[["site", "n"], ["A", "4"], ["B", "40"]])
    report, got, fs = findings("letter.docx", data)
    assert {("identifier.person-name", Severity.WARN), ("identifier.national-id", Severity.BLOCK),
            ("sdc.threshold", Severity.BLOCK)} <= got
    nhs = next(f for f in fs if f.check == "identifier.national-id")
    assert nhs.location["part"] == "word/document.xml" and nhs.location["excerpt"][1] == "943 476 5919"
    report, _, fs = findings("methods.docx", docx(["Models were trained with nnU-Net."],
                                                  table=[["site", "patients"], ["A", "130"]]))
    assert report.verdict == "pass", [f.message for f in fs]


def test_word_embedded_object_and_macros_are_blocked():
    report, got, fs = findings("r.docx", docx(["x"], embed=zip_bytes({"a.csv": b"id\n1\n"})))
    assert ("document.embedded-file", Severity.BLOCK) in got and report.verdict == "block"
    report, got, _ = findings("m.xlsx", xlsx(["site", "n"], [["A", 40]], macros=True))
    assert ("document.active-content", Severity.BLOCK) in got


def test_word_media_are_checked_as_images():
    data = add_zip_member(docx(["Figure"]), "word/media/image1.png", plot_png(200, 150))
    _, got, _ = findings("f.docx", data)
    assert ("document.embedded-image", Severity.WARN) in got


def test_slides_text_is_checked():
    report, got, fs = findings("talk.pptx", pptx(["Results", "Outlier: Jan de Vries, BSN 1112.22.333"]))
    ids = [f for f in fs if f.check == "identifier.national-id"]
    assert ids and ids[0].location["part"] == "ppt/slides/slide2.xml"
    assert ("identifier.person-name", Severity.WARN) in got


def test_notebook_output_images_are_checked():
    import numpy as np
    payload = zip_bytes({"d.csv": b"patient_id,age\n" * 200})
    side = int(np.ceil(np.sqrt(len(payload) / 3)))
    carrier = png(mode="RGB", size=(side, side), raw=payload.ljust(side * side * 3, b"\0"))
    report, got, fs = findings("a.ipynb", notebook([image_output(carrier)]))
    hit = [f for f in fs if f.check == "image.carrier"]
    assert hit and hit[0].severity is Severity.BLOCK and hit[0].location["cell"] == 0
    report, got, fs = findings("b.ipynb", notebook([image_output(plot_png(320, 240))]))
    assert report.verdict == "pass", [f.message for f in fs]


def test_svg_embedded_image_is_checked():
    import base64
    import numpy as np
    strip = png(np.random.default_rng(3).integers(0, 255, (2, 4000), dtype=np.uint8))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,'
           f'{base64.b64encode(strip).decode()}"/></svg>').encode()
    _, got, _ = findings("f.svg", svg)
    assert ("image.carrier", Severity.BLOCK) in got and ("html.embedded-data", Severity.WARN) in got
