"""Documents: PDF, Office (xlsx, docx, pptx), HTML/SVG and notebooks.

Text is extracted (PDF with pypdf, xlsx with openpyxl, docx with python-docx, pptx from its
slide XML) and run through the same identifier and name checks as a text file; spreadsheet
sheets and Word tables also go through the table checks (SDC rules, record-level). Embedded
files are BLOCKed, as are macros; embedded images are flagged (WARN) and run through the image
checks (metadata, carrier). Findings in extracted text are located by ``page`` (PDF),
``sheet`` or ``part``, with ``start``/``end`` into that page's or part's extracted text and an
``excerpt`` ``[before, hit, after]`` around the hit for the reviewer.
"""

from __future__ import annotations

import base64
import binascii
import csv
import html
import io
import json
import re
import warnings
import zipfile
from typing import AbstractSet, Callable

from .identifiers import find_identifiers
from .model import Finding, Severity

MAX_PAGES = 500
MAX_TEXT = 2_000_000
MAX_EMBEDDED_IMAGES = 50
EXCERPT = 40
#: (table text as CSV, where) -> findings: the engine's table checks, passed in (no import cycle).
TableChecks = Callable[[str, dict], list[Finding]]

_PDF_INFO = re.compile(rb"/(Author|Title|Subject|Keywords|Creator|Producer)\s*\(((?:[^()\\]|\\.){0,500})\)")
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|EmbeddedFiles|RichMedia)\b")
_HTML_SCRIPT = re.compile(r"(?i)<script\b|\son[a-z]+\s*=")
_HTML_DATA = re.compile(r"(?i)\bdata:[a-z]+/[a-z0-9.+-]+;base64,")


def check_pdf(d: bytes, ids: AbstractSet[str]) -> list[Finding]:
    out: list[Finding] = []
    for kind in sorted({m.group(1).decode() for m in _PDF_ACTIVE.finditer(d)}):
        embedded = kind.startswith("Embedded") or kind == "RichMedia"
        out.append(Finding("document.active-content", Severity.BLOCK if embedded else Severity.WARN,
                           (f"The PDF contains embedded files ({kind}); any data can hide in them. Export the "
                            "files separately." if embedded else
                            f"The PDF contains active content ({kind}); export a plain PDF."),
                           {"key": kind}))
    for m in _PDF_INFO.finditer(d):
        key, value = m.group(1).decode(), m.group(2).decode("latin-1")
        if not value.strip():
            continue
        benign = key in ("Creator", "Producer")
        out.append(Finding("document.metadata", Severity.INFO if benign else Severity.WARN,
                           f"The PDF's metadata '{key}' is '{value[:80]}'. Check it names no patient or "
                           "private detail, or clear it.", {"key": key, "offset": m.start(2)}))
        for hit in find_identifiers(value, ids):
            out.append(Finding(hit.check, hit.severity, hit.message + f" (in the PDF's '{key}' metadata)",
                               {"key": key, "start": hit.start, "end": hit.end}))
    pages, images, error = _pdf_content(d)
    if error:
        out.insert(0, Finding("document.content", Severity.INFO,
                              f"The PDF's text could not be extracted ({error}). Read it for tables with small "
                              "counts, identifiers, names and dates."))
        return out
    chars = sum(len(p) for p in pages)
    out.insert(0, Finding("document.content", Severity.INFO,
                          f"Text of {len(pages)} page(s) ({chars:,} characters) was extracted and checked. Text in "
                          "figures drawn as paths, and scanned pages, are not read: look at them.",
                          {"pages": len(pages), "chars": chars}))
    for i, text in enumerate(pages, 1):
        out += text_checks(text, ids, {"page": i}, f"page {i}")
    out += _embedded_images(images, ids, "PDF")
    return out


def _pdf_content(d: bytes) -> tuple[list[str], list[tuple[dict, bytes]], str | None]:
    """(text per page, embedded images as (where, bytes), error)."""
    from pypdf import PdfReader
    pages: list[str] = []
    images: list[tuple[dict, bytes]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(d), strict=False)
            if reader.is_encrypted:
                return [], [], "it is encrypted"
            total = 0
            for n, page in enumerate(reader.pages[:MAX_PAGES], 1):
                text = page.extract_text() or ""
                pages.append(text[:max(0, MAX_TEXT - total)])
                total += len(text)
                if len(images) < MAX_EMBEDDED_IMAGES:
                    try:
                        for img in page.images:
                            images.append(({"page": n, "image": img.name}, img.data))
                    except Exception:  # noqa: BLE001 - an image pypdf cannot decode: still counted below
                        images.append(({"page": n, "image": "?"}, b""))
    except Exception as e:  # noqa: BLE001 - pypdf raises many kinds on hostile input
        return [], [], f"{type(e).__name__}: {str(e)[:80]}"
    return pages, images, None


def text_checks(text: str, ids: AbstractSet[str], where: dict, label: str) -> list[Finding]:
    """Identifier and name findings in extracted text, located by ``where`` plus offsets
    into that text and an excerpt around the hit."""
    out = []
    for h in find_identifiers(text, ids):
        lo, hi = max(0, h.start - EXCERPT), min(len(text), h.end + EXCERPT)
        out.append(Finding(h.check, h.severity, f"{h.message} (in the document's {label})",
                           {**where, "start": h.start, "end": h.end,
                            "excerpt": [text[lo:h.start], text[h.start:h.end], text[h.end:hi]]}))
    return out


def _embedded_images(images: list[tuple[dict, bytes]], ids: AbstractSet[str], what: str) -> list[Finding]:
    """Each embedded image is flagged and run through the image checks (metadata, carrier)."""
    from .images import check_image
    from .sniff import IMAGE, sniff
    if not images:
        return []
    outputs = what == "notebook"  # a notebook's figures are its outputs, shown to the reviewer
    out = [Finding("document.embedded-image", Severity.INFO if outputs else Severity.WARN,
                   f"The {what} embeds {len(images)} image(s). Their metadata and pixels were checked as images; "
                   "look at them for burned-in details.", {"images": len(images)})]
    for where, data in images:
        s = sniff(data) if data else None
        if s is None or s.family != IMAGE:
            continue
        for f in check_image(s.type, data, ids):
            if f.check != "image.content":
                out.append(Finding(f.check, f.severity, f.message + f" (an image embedded in the {what})",
                                   {**where, **(f.location or {})}))
    return out


# ------------------------------------------------------------------ Office
_OFFICE_EMBED = re.compile(r"^(?:word|xl|ppt)/embeddings/")
_OFFICE_MEDIA = re.compile(r"^(?:word|xl|ppt)/media/")
_PPT_TEXT = re.compile(r"<a:t>([^<]*)</a:t>")


def check_office(d: bytes, ids: AbstractSet[str], tables: TableChecks) -> list[Finding]:
    try:
        z = zipfile.ZipFile(io.BytesIO(d))
        names = z.namelist()
    except Exception:  # noqa: BLE001 - unreadable zip: the sniffer said office, nothing more to read
        return [Finding("document.content", Severity.INFO, "The Office document could not be opened; read it.")]
    out: list[Finding] = []
    embedded = [n for n in names if _OFFICE_EMBED.match(n)]
    if embedded:
        out.append(Finding("document.embedded-file", Severity.BLOCK,
                           f"The document embeds {len(embedded)} file(s) ({', '.join(embedded[:5])}); any data can "
                           "hide in them, as in an archive. Export them separately.", {"parts": embedded[:20]}))
    macros = [n for n in names if n.lower().endswith("vbaproject.bin")]
    if macros:
        out.append(Finding("document.active-content", Severity.BLOCK,
                           "The document contains macros (vbaProject.bin); save it without macros.",
                           {"parts": macros}))
    try:
        if "xl/workbook.xml" in names:
            out += _xlsx(d, ids, tables)
        elif "word/document.xml" in names:
            out += _docx(d, ids, tables)
        elif "ppt/presentation.xml" in names:
            out += _pptx(z, names, ids)
    except Exception as e:  # noqa: BLE001 - the parsers raise many kinds on hostile input
        out.insert(0, Finding("document.content", Severity.INFO,
                              f"The document's text could not be extracted ({type(e).__name__}); read it."))
    media = [({"part": n}, z.read(n)) for n in names if _OFFICE_MEDIA.match(n)][:MAX_EMBEDDED_IMAGES]
    out += _embedded_images(media, ids, "document")
    return out


def _xlsx(d: bytes, ids: AbstractSet[str], tables: TableChecks) -> list[Finding]:
    from openpyxl import load_workbook
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = load_workbook(io.BytesIO(d), read_only=True, data_only=True)
    out = [Finding("document.content", Severity.INFO,
                   f"The workbook's {len(wb.sheetnames)} sheet(s) were read as tables and checked "
                   "(values, not formulas or charts).", {"sheets": wb.sheetnames[:50]})]
    for ws in wb.worksheets:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in ws.iter_rows(values_only=True):
            writer.writerow(["" if v is None else str(v) for v in row])
        if buf.getvalue().strip():
            out += tables(buf.getvalue(), {"sheet": ws.title})
    wb.close()
    return out


def _docx(d: bytes, ids: AbstractSet[str], tables: TableChecks) -> list[Finding]:
    import docx
    doc = docx.Document(io.BytesIO(d))
    text = "\n".join(p.text for p in doc.paragraphs)
    out = [Finding("document.content", Severity.INFO,
                   f"The document's text ({len(text):,} characters) and {len(doc.tables)} table(s) were extracted "
                   "and checked.", {"chars": len(text), "tables": len(doc.tables)})]
    out += text_checks(text, ids, {"part": "word/document.xml"}, "text")
    for i, t in enumerate(doc.tables):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in t.rows:
            writer.writerow([c.text for c in row.cells])
        out += tables(buf.getvalue(), {"part": "word/document.xml", "table": i})
    return out


def _pptx(z: zipfile.ZipFile, names: list[str], ids: AbstractSet[str]) -> list[Finding]:
    slides = sorted((n for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)),
                    key=lambda n: int(re.search(r"(\d+)", n.rsplit("/", 1)[1]).group(1)))
    out = [Finding("document.content", Severity.INFO, f"The text of {len(slides)} slide(s) was extracted and checked.",
                   {"slides": len(slides)})]
    for n in slides:
        text = "\n".join(html.unescape(t) for t in _PPT_TEXT.findall(z.read(n).decode("utf-8", "replace")))
        out += text_checks(text, ids, {"part": n}, f"slide {n.rsplit('/', 1)[1]}")
    return out


# ------------------------------------------------------------------ images inside text formats
_DATA_URI = re.compile(r"data:image/[a-z0-9.+-]+;base64,([A-Za-z0-9+/=\s]{16,})")


def embedded_text_images(text: str, ids: AbstractSet[str], kind: str) -> list[Finding]:
    """Images embedded in HTML/SVG (``data:image/...;base64``) or a notebook's outputs
    (``image/png`` entries): run through the image checks."""
    images: list[tuple[dict, bytes]] = []
    if kind == "ipynb":
        try:
            nb = json.loads(text)
        except ValueError:
            nb = {}
        for ci, cell in enumerate(nb.get("cells", []) if isinstance(nb, dict) else []):
            for oi, output in enumerate(cell.get("outputs", []) if isinstance(cell, dict) else []):
                data = output.get("data", {}) if isinstance(output, dict) else {}
                for mime in ("image/png", "image/jpeg", "image/gif"):
                    if isinstance(data, dict) and mime in data:
                        raw = data[mime]
                        images.append(({"cell": ci, "output": oi, "mime": mime},
                                       _b64("".join(raw) if isinstance(raw, list) else str(raw))))
    for m in _DATA_URI.finditer(text):
        images.append(({"start": m.start(), "end": m.end()}, _b64(m.group(1))))
    images = [(w, b) for w, b in images if b][:MAX_EMBEDDED_IMAGES]
    what = "notebook" if kind == "ipynb" else kind.upper()
    out = _embedded_images(images, ids, what)
    # HTML's own finding (html.embedded-data) already flags data: URIs; keep only the image checks there
    return [f for f in out if kind == "ipynb" or f.check != "document.embedded-image"]


def _b64(s: str) -> bytes:
    try:
        return base64.b64decode("".join(s.split()), validate=False)
    except (binascii.Error, ValueError):
        return b""


def check_html(text: str) -> list[Finding]:
    out = []
    script = _HTML_SCRIPT.search(text)
    if script:
        out.append(Finding("html.active-content", Severity.WARN,
                           "The HTML contains scripts or event handlers. Scripts can carry or fetch data that "
                           "is not visible on the page; export a static page or a PDF.",
                           _span(text, script.start(), script.end())))
    embedded = list(_HTML_DATA.finditer(text))
    if embedded:
        first = embedded[0]
        out.append(Finding("html.embedded-data", Severity.WARN,
                           f"The HTML embeds {len(embedded)} base64 data object(s) (e.g. images). Their content "
                           "and metadata are not checked here; export them as separate files.",
                           _span(text, first.start(), first.end())))
    return out


def _span(text: str, start: int, end: int) -> dict[str, int]:
    return {"start": start, "end": end, "line": text.count("\n", 0, start) + 1}
