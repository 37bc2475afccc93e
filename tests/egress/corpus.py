"""A small labelled corpus of export requests, risky and benign, for the detectors
(record-level tables, national identifiers, names, documents, image carriers).

Every case is built here from a fixed seed (no file is downloaded); a risky case names the
detector (check) that must catch it and the severity it must reach at least; a benign case
must not be blocked, and any WARN or BLOCK finding of a detector on it counts as that
detector's false positive.

    python -m tests.egress.corpus        # prints caught / false positives per detector
"""

from __future__ import annotations

import base64
import io
import json
import random
import zipfile
from dataclasses import dataclass

import numpy as np

from spe_egress.checks import CheckPolicy, FileInput, Severity, run_checks

POLICY = CheckPolicy(allowed_types=["csv", "tsv", "txt", "json", "markdown", "png", "svg", "ipynb", "pdf", "office",
                                    "html"])
DETECTORS = ("sdc.record-level", "identifier.national-id", "identifier.person-name", "document.embedded-file",
             "document.active-content", "document.embedded-image", "image.carrier")


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    data: bytes
    detector: str | None  # None: benign
    at_least: Severity = Severity.BLOCK


# ------------------------------------------------------------------ builders
def csv(header: list[str], rows: list[list]) -> bytes:
    return ("\n".join([",".join(header)] + [",".join(str(v) for v in r) for r in rows]) + "\n").encode()


def png(array: np.ndarray | None = None, *, mode: str | None = None, size=None, raw: bytes | None = None) -> bytes:
    from PIL import Image
    im = Image.frombytes(mode, size, raw) if raw is not None else Image.fromarray(array)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def plot_png(width=640, height=480) -> bytes:
    from PIL import Image, ImageDraw
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    d.line([(50, height - 50), (width - 20, height - 50)], fill="black", width=2)
    d.line([(50, height - 50), (50, 20)], fill="black", width=2)
    pts = [(50 + i * (width - 80) // 20, height - 60 - int((height - 120) * (1 - np.exp(-i / 5)))) for i in range(21)]
    d.line(pts, fill="steelblue", width=3)
    d.text((width // 2 - 20, height - 30), "Epoch", fill="black")
    d.text((5, height // 2), "AUC", fill="black")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def colour_bar(width=40, height=800) -> bytes:
    ramp = np.linspace(0, 255, height).astype(np.uint8)[::-1]
    rgb = np.stack([ramp, np.abs(128 - ramp.astype(int)).astype(np.uint8) * 2, 255 - ramp], axis=1)
    return png(np.repeat(rgb[:, None, :], width, axis=1))


def pdf(lines: list[str], *, plot: bool = False, attach: bytes | None = None, image: bytes | None = None) -> bytes:
    from fpdf import FPDF
    doc = FPDF()
    doc.set_creator("spe-test")
    doc.add_page()
    doc.set_font("Helvetica", size=11)
    for line in lines:
        doc.cell(0, 8, line)
        doc.ln()
    if plot:
        doc.line(20, 200, 190, 200)
        doc.line(20, 200, 20, 60)
        for i in range(12):
            doc.line(20 + i * 14, 200 - 100 * (1 - np.exp(-i / 3)), 34 + i * 14, 200 - 100 * (1 - np.exp(-(i + 1) / 3)))
        doc.text(95, 210, "Epoch")
        doc.text(5, 130, "AUC")
    if image is not None:
        doc.image(io.BytesIO(image), x=20, y=220, w=60)
    if attach is not None:
        doc.embed_file(basename="cohort.csv", bytes=attach, desc="data")
    return bytes(doc.output())


def xlsx(header: list[str], rows: list[list], macros: bool = False) -> bytes:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    data = buf.getvalue()
    if macros:
        data = add_zip_member(data, "xl/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\x00" * 60)
    return data


def docx(paragraphs: list[str], table: list[list[str]] | None = None, embed: bytes | None = None) -> bytes:
    import docx as python_docx
    d = python_docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for i, row in enumerate(table):
            for j, v in enumerate(row):
                t.cell(i, j).text = str(v)
    buf = io.BytesIO()
    d.save(buf)
    data = buf.getvalue()
    if embed is not None:
        data = add_zip_member(data, "word/embeddings/oleObject1.bin", embed)
    return data


def pptx(slides: list[str]) -> bytes:
    """A minimal presentation: the parts the checks read (no python-pptx needed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                                          'package/2006/content-types"/>')
        z.writestr("ppt/presentation.xml", "<p:presentation/>")
        for i, text in enumerate(slides, 1):
            z.writestr(f"ppt/slides/slide{i}.xml", f"<p:sld><a:t>{text}</a:t></p:sld>")
    return buf.getvalue()


def add_zip_member(data: bytes, name: str, member: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        z.writestr(name, member)
    return out.getvalue()


def notebook(outputs: list[dict]) -> bytes:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["print(result)"],
                     "outputs": outputs}]}
    return json.dumps(nb, indent=1, ensure_ascii=False).encode()


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": [text]}


def image_output(data: bytes) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(data).decode(), "text/plain": ["<Figure>"]}}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return buf.getvalue()


# ------------------------------------------------------------------ the corpus
VALID_IDS = {  # published example numbers of each scheme (they pass their check digits)
    "nl-bsn": "BSN 1112.22.333", "es-dni": "DNI 12345678-Z", "es-nie": "NIE X-1234567-L",
    "it-cf": "codice fiscale RSSMRA85T10A562S", "fr-nir": "NIR 2 55 08 14 168 025 38",
    "de-kvnr": "KVNR A123456780", "de-steuer-id": "Steuer-ID 86 095 742 719",
    "be-rrn": "rijksregisternummer 85.07.30-033.28", "pt-nif": "NIF 123 456 789",
    "pt-cc": "Cartão de Cidadão 00000000 0 ZZ4", "se-personnummer": "personnummer 811218-9876",
    "uk-nhs": "NHS number 943 476 5919",
}


def risky() -> list[Case]:
    rnd = random.Random(21)
    cases: list[Case] = []
    ages = lambda: rnd.randint(28, 91)  # noqa: E731
    # record-level tables
    cases.append(Case("patient-id table", "features.csv", csv(
        ["patient_id", "age", "sex", "tumour_volume_ml", "grade"],
        [[f"P{i:04d}", ages(), rnd.choice("MF"), round(rnd.uniform(2, 90), 2), rnd.randint(1, 3)] for i in range(150)]),
        "sdc.record-level"))
    cases.append(Case("survival without ID", "survival.csv", csv(
        ["age", "sex", "os_months", "death"],
        [[ages(), rnd.choice("MF"), round(rnd.uniform(0.5, 60), 1), rnd.randint(0, 1)] for _ in range(80)]),
        "sdc.record-level"))
    cases.append(Case("quasi-identifiers", "cohort.csv", csv(
        ["age", "sex", "postcode", "bmi", "diagnosis"],
        [[ages(), rnd.choice("MF"), rnd.choice(["1011", "3511", "6525", "9713"]), round(rnd.uniform(18, 35), 1),
          rnd.choice(["NSCLC", "SCLC"])] for _ in range(60)]), "sdc.record-level"))
    cases.append(Case("per-row scan dates", "scans.csv", csv(
        ["scan_date", "modality", "lesion_count"],
        [[f"2022-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", rnd.choice(["CT", "MR"]), rnd.randint(0, 6)]
         for _ in range(40)]), "sdc.record-level"))
    cases.append(Case("radiomics rows without ID", "radiomics.csv", csv(
        ["firstorder_mean", "glcm_contrast", "shape_sphericity"],
        [[round(rnd.gauss(100, 20), 4), round(rnd.gauss(5, 1), 4), round(rnd.uniform(0.4, 0.9), 4)]
         for _ in range(200)]), "sdc.record-level"))
    cases.append(Case("subject codes (TSV)", "sub.tsv", "\n".join(
        ["participant\tgroup\tscore"] + [f"sub-{i:03d}\t{rnd.choice(['A', 'B'])}\t{rnd.randint(0, 30)}"
                                           for i in range(1, 41)]).encode(), "sdc.record-level"))
    cases.append(Case("sequential id column", "rows.csv", csv(
        ["id", "age_group", "response"], [[i, rnd.choice(["<50", "50-69", "70+"]), rnd.choice(["CR", "PR", "SD", "PD"])]
                                          for i in range(1, 31)]), "sdc.record-level"))
    cases.append(Case("record-level workbook", "patients.xlsx", xlsx(
        ["subject_id", "age", "os_days", "status"],
        [[f"S{i:03d}", ages(), rnd.randint(10, 2000), rnd.randint(0, 1)] for i in range(50)]), "sdc.record-level"))
    # national identifiers
    for key, text in VALID_IDS.items():
        cases.append(Case(f"{key} in text", f"{key}.txt", f"Case note. {text}. Follow-up in six weeks.\n".encode(),
                          "identifier.national-id"))
    cases.append(Case("BSN column, no header context", "linkage.csv", csv(
        ["nr", "site"], [[v, s] for v, s in zip(["367418253", "209494177", "762984594", "278086998", "487824738"],
                                                "ABABA")]), "identifier.national-id"))
    cases.append(Case("NHS column by header", "nhs.csv", csv(
        ["nhs_number", "n_visits"], [["9434765919", 12], ["4010232137", 15]]), "identifier.national-id"))
    cases.append(Case("DNI in CSV cells", "es.csv", csv(["documento", "centro"], [["12345678Z", "Madrid"],
                                                                                   ["X1234567L", "Sevilla"]]),
                      "identifier.national-id"))
    cases.append(Case("codice fiscale in a Word file", "lettera.docx", docx(
        ["Paziente con codice fiscale RSSMRA85T10A562S, controllo a sei mesi."]), "identifier.national-id"))
    cases.append(Case("NIR in a PDF", "compte-rendu.pdf", pdf(["Compte rendu: NIR 1 84 12 76 451 089 46."]),
                      "identifier.national-id"))
    # names
    cases.append(Case("clinical note", "note.txt", b"Seen today: Anna Schmidt, 67, follow-up CT in March.\n",
                      "identifier.person-name", Severity.WARN))
    cases.append(Case("name column", "list.csv", csv(["patient_name", "n_scans"], [["Jansen", 12], ["Rossi", 14]]),
                      "identifier.person-name", Severity.WARN))
    cases.append(Case("SVG figure label", "fig.svg", (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><text x="10" y="20">Case 3: '
        'Pieter van der Berg</text></svg>').encode(), "identifier.person-name", Severity.WARN))
    cases.append(Case("notebook output", "analysis.ipynb", notebook([stream("worst error: Dubois, Marie (id 17)\n")]),
                      "identifier.person-name", Severity.WARN))
    cases.append(Case("PDF text", "case.pdf", pdf(["Discussed with Dr. Müller; patient Lucia Bianchi consented."]),
                      "identifier.person-name", Severity.WARN))
    cases.append(Case("slide text", "talk.pptx", pptx(["Outlier: Jan de Vries"]), "identifier.person-name",
                      Severity.WARN))
    # documents: embedded files and macros
    cases.append(Case("PDF with an attached file", "report-att.pdf",
                      pdf(["Results attached."], attach=b"patient_id,age\nP1,54\n"), "document.active-content"))
    cases.append(Case("Word file with an embedded object", "report.docx",
                      docx(["See embedded table."], embed=zip_bytes({"cohort.csv": b"id,age\n1,54\n"})),
                      "document.embedded-file"))
    cases.append(Case("workbook with macros", "tool.xlsx", xlsx(["site", "n"], [["A", 40], ["B", 52]], macros=True),
                      "document.active-content"))
    cases.append(Case("PDF with an embedded image", "figure.pdf", pdf(["Figure 1"], image=plot_png(320, 240)),
                      "document.embedded-image", Severity.WARN))
    # images as carriers
    payload = zip_bytes({"cohort.csv": csv(["patient_id", "age"], [[f"P{i}", ages()] for i in range(400)])})
    side = int(np.ceil(np.sqrt(len(payload) / 3)))
    cases.append(Case("zip in RGB pixels", "heatmap.png",
                      png(mode="RGB", size=(side, side), raw=payload.ljust(side * side * 3, b"\0")), "image.carrier"))
    text = ("patient_id,age,sex\n" + "".join(f"P{i:04d},{ages()},{rnd.choice('MF')}\n" for i in range(6000))).encode()
    cases.append(Case("CSV in grey pixels", "texture.png",
                      png(mode="L", size=(256, 256), raw=text[:65536].ljust(65536, b" ")), "image.carrier"))
    cases.append(Case("one pixel wide", "strip.png",
                      png(np.random.default_rng(1).integers(0, 255, (6000, 1), dtype=np.uint8)), "image.carrier"))
    cases.append(Case("aspect ratio 100:1", "bar.png", png(np.full((20, 2000, 3), 200, dtype=np.uint8)),
                      "image.carrier"))
    cases.append(Case("implausible size", "huge.png", png(np.zeros((4, 24000), dtype=np.uint8)), "image.carrier"))
    cases.append(Case("random pixels", "noise.png",
                      png(np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)), "image.carrier",
                      Severity.WARN))
    cases.append(Case("carrier in a notebook output", "plots.ipynb", notebook([image_output(
        png(mode="RGB", size=(side, side), raw=payload.ljust(side * side * 3, b"\0")))]), "image.carrier"))
    return cases


AUTHORS_MD = b"""# Lung nodule malignancy model

Code and aggregate results of the SPE project HDAB-NL-2026-0042.

## Authors
- Pieter van der Berg (Radboudumc)
- Marie Dubois (AP-HP)
- Lucia Bianchi, Anna Schmidt

## Results
Validation AUC 0.87 (95% CI 0.83-0.91) on 412 patients from 3 sites; see Figure 2.
"""

METHODS_TXT = b"""Methods. Survival was estimated with Kaplan Meier curves and compared with the log-rank test;
hazard ratios come from Cox proportional hazards models. Groups were compared with the Mann Whitney U test and
Fisher's exact test, p-values adjusted by Benjamini Hochberg. Segmentations used nnU-Net v2.4.1 in Python 3.11.
Data version 2026.03, accession GSE123456, ORCID 0000-0002-1825-0097, grant 101057062. Cohort: 412 patients,
1,204 scans, median age 64 (IQR 57-71). Table 2 shows the Mean Dice Score per Site.
"""


def benign() -> list[Case]:
    rnd = random.Random(7)
    cases: list[Case] = []
    cases.append(Case("aggregate counts >= threshold", "counts.csv", csv(
        ["site", "sex", "n"], [["A", "F", 41], ["A", "M", 38], ["B", "F", 52], ["B", "M", 47], ["C", "F", 12],
                               ["C", "M", 15]]), None))
    cases.append(Case("cross-tab", "stage.csv", csv(
        ["stage", "female", "male", "total"], [["I", 30, 25, 55], ["II", 44, 40, 84], ["III", 21, 33, 54]]), None))
    cases.append(Case("training log", "train.csv", csv(
        ["epoch", "train_loss", "val_auc"],
        [[i, round(1 / (i + 1) + rnd.random() / 50, 5), round(0.6 + i / 600 + rnd.random() / 100, 4)]
         for i in range(150)]), None))
    cases.append(Case("ROC curve", "roc.csv", csv(
        ["threshold", "fpr", "tpr"], [[round(1 - i / 200, 3), round(i / 200, 4), round((i / 200) ** 0.4, 4)]
                                      for i in range(201)]), None))
    cases.append(Case("model coefficients", "cox.csv", csv(
        ["feature", "coef", "hr", "p"], [[f"feature_{i}", round(rnd.gauss(0, 0.3), 4), round(rnd.uniform(0.5, 2), 3),
                                          round(rnd.random(), 4)] for i in range(120)]), None))
    cases.append(Case("life table", "km.csv", csv(
        ["time_months", "n_risk", "n_event", "survival"],
        [[m, 400 - 12 * m, 12, round(1 - 0.03 * m, 3)] for m in range(0, 25, 3)]), None))
    cases.append(Case("per-year counts", "years.csv", csv(["year", "scans"], [[y, 100 + 7 * i]
                                                                             for i, y in enumerate(range(2010, 2026))]),
                      None))
    cases.append(Case("table 1 (descriptive)", "table1.csv", csv(
        ["variable", "mean", "sd", "median", "n"],
        [["age", 63.2, 9.1, 64, 412], ["bmi", 26.1, 4.2, 25.8, 398], ["pack_years", 31.5, 17.0, 28, 377]]), None))
    cases.append(Case("per-site counts with site codes", "sites.csv", csv(
        ["site_id", "patients", "scans"], [[f"S{i:02d}", 20 + 3 * i, 50 + 7 * i] for i in range(1, 25)]), None))
    cases.append(Case("confusion matrix", "confusion.csv", csv(
        ["actual", "pred_benign", "pred_malignant"], [["benign", 210, 31], ["malignant", 18, 153]]), None))
    cases.append(Case("hyper-parameter search", "search.csv", csv(
        ["run", "lr", "batch_size", "dropout", "val_auc"],
        [[i, round(10 ** rnd.uniform(-5, -2), 6), rnd.choice([8, 16, 32]), round(rnd.uniform(0, 0.5), 3),
          round(rnd.uniform(0.7, 0.9), 4)] for i in range(80)]), None))
    cases.append(Case("histogram", "hist.csv", csv(
        ["bin_start", "bin_end", "count"], [[20 + 5 * i, 25 + 5 * i, 10 + (i * 7) % 40] for i in range(14)]), None))
    cases.append(Case("metrics JSON", "metrics.json", json.dumps(
        {"auc": 0.87, "n": 412, "model": "resnet50-3d", "commit": "a1b2c3d", "run_date": "2026-11"}).encode(), None))
    cases.append(Case("references", "refs.md", b"""## References
1. Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc. 1958.
2. Isensee F, Jaeger PF, Kohl SAA, Petersen J, Maier-Hein KH. nnU-Net. Nat Methods. 2021;18:203-211.
3. Anna Schmidt, Pieter van der Berg. Federated lung CT. Radiology 2025.
""", None))
    cases.append(Case("README author list", "README.md", AUTHORS_MD, None))
    cases.append(Case("methods text", "methods.txt", METHODS_TXT, None))
    cases.append(Case("PDF of a plot", "auc.pdf", pdf(["Validation AUC by epoch (n = 412)"], plot=True), None))
    cases.append(Case("colour bar", "colorbar.png", colour_bar(), None))
    cases.append(Case("horizontal colour bar", "colorbar-h.png", colour_bar(600, 30), None))
    cases.append(Case("plot", "plot.png", plot_png(), None))
    heat = (np.add.outer(np.linspace(0, 1, 300), np.linspace(0, 1, 400)) * 120).astype(np.uint8)
    cases.append(Case("heatmap", "heat.png", png(heat), None))
    cases.append(Case("SVG figure", "auc.svg", (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><text x="10" y="20">Validation AUC by '
        'epoch</text><text x="150" y="290">Epoch</text><polyline points="10,200 100,120 300,60" /></svg>').encode(),
        None))
    cases.append(Case("notebook with a plot", "results.ipynb",
                      notebook([stream("AUC 0.87 (n = 412)\n"), image_output(plot_png(320, 240))]), None))
    cases.append(Case("aggregate workbook", "summary.xlsx", xlsx(["site", "patients"], [["A", 130], ["B", 120]]),
                      None))
    cases.append(Case("methods in Word", "methods.docx", docx(
        ["Models were trained with nnU-Net and evaluated with Kaplan Meier analysis.",
         "The SPE team thanks the data holders."], table=[["site", "patients"], ["A", "130"], ["B", "120"]]), None))
    cases.append(Case("slides with results", "results.pptx", pptx(["AUC 0.87 on 412 patients", "Kaplan Meier"]),
                      None))
    return cases


# ------------------------------------------------------------------ scoring
def evaluate() -> dict[str, dict[str, int]]:
    """Per detector: risky cases, caught, benign cases with a WARN/BLOCK finding of it
    (false positives), and benign cases it blocked."""
    figures = {d: {"risky": 0, "caught": 0, "false_positives": 0, "benign_blocked": 0} for d in DETECTORS}
    for case in risky():
        report = run_checks([FileInput(case.file, case.data)], POLICY)
        worst = max((f.severity.rank for f in report.files[0].findings if f.check == case.detector), default=-1)
        figures[case.detector]["risky"] += 1
        figures[case.detector]["caught"] += worst >= case.at_least.rank
    for case in benign():
        report = run_checks([FileInput(case.file, case.data)], POLICY)
        for d in DETECTORS:
            hits = [f for f in report.files[0].findings if f.check == d and f.severity is not Severity.INFO]
            figures[d]["false_positives"] += bool(hits)
            figures[d]["benign_blocked"] += any(f.severity is Severity.BLOCK for f in hits)
    return figures


def outcomes() -> list[tuple[str, str, str, str]]:
    """(label, case, file, verdict) for every case: for the report and for debugging."""
    rows = []
    for label, cases in (("risky", risky()), ("benign", benign())):
        for case in cases:
            rows.append((label, case.name, case.file, run_checks([FileInput(case.file, case.data)], POLICY).verdict))
    return rows


def random_number_rates(n: int = 2000) -> dict[str, float]:
    """Share of random tokens, alone in a sentence without any context word, that the
    national-ID detector flags (what a check digit alone lets through)."""
    from spe_egress.checks import find_identifiers
    rnd = random.Random(3)
    shapes = {f"{k} digits": (lambda k=k: str(rnd.randint(10 ** (k - 1), 10 ** k - 1))) for k in range(8, 16)}
    shapes["letter + 9 digits"] = lambda: chr(65 + rnd.randrange(26)) + str(rnd.randint(10 ** 8, 10 ** 9 - 1))
    shapes["8 digits + letter"] = lambda: str(rnd.randint(10 ** 7, 10 ** 8 - 1)) + chr(65 + rnd.randrange(26))
    rates = {}
    for shape, make in shapes.items():
        flagged = sum(any(h.check == "identifier.national-id" for h in find_identifiers(f"value {make()} in run 3"))
                      for _ in range(n))
        rates[shape] = flagged / n
    return rates


def main() -> None:
    figures = evaluate()
    print(f"{'detector':26} {'risky':>5} {'caught':>6} {'FP (benign)':>11} {'benign blocked':>14}")
    for d, f in figures.items():
        print(f"{d:26} {f['risky']:>5} {f['caught']:>6} {f['false_positives']:>11} {f['benign_blocked']:>14}")
    print("random tokens without context flagged as national IDs: " + ", ".join(
        f"{shape} {rate:.2%}" for shape, rate in random_number_rates().items()))
    print(f"benign cases: {len(benign())}; verdicts: " + ", ".join(
        f"{name}={verdict}" for label, name, _, verdict in outcomes() if label == "benign"))


if __name__ == "__main__":
    main()
