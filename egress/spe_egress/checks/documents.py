"""PDF and HTML specifics beyond identifier scanning: active content, embedded files and
document metadata. PDF text streams are usually compressed and are not decoded here, so a
PDF always carries an INFO finding asking the reviewer to read it."""

from __future__ import annotations

import re
from typing import AbstractSet

from .identifiers import find_identifiers
from .model import Finding, Severity

_PDF_INFO = re.compile(rb"/(Author|Title|Subject|Keywords|Creator|Producer)\s*\(((?:[^()\\]|\\.){0,500})\)")
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|EmbeddedFiles|RichMedia)\b")
_HTML_SCRIPT = re.compile(r"(?i)<script\b|\son[a-z]+\s*=")
_HTML_DATA = re.compile(r"(?i)\bdata:[a-z]+/[a-z0-9.+-]+;base64,")


def check_pdf(d: bytes, ids: AbstractSet[str]) -> list[Finding]:
    out = [Finding("document.content", Severity.INFO,
                   "PDF text is not checked automatically (it is usually compressed). Read it for tables with "
                   "small counts, identifiers and dates.")]
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
    return out


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
