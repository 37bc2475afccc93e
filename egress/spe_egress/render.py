"""Views of quarantined files for the reviewer page: tables with the cells that the checks
flagged, text with flagged spans, images inline. Pure functions returning plain data; the
templates escape every value (Jinja2 autoescape), so file contents never become markup.
"""

from __future__ import annotations

import csv
import io

MAX_TABLE_ROWS = 500
MAX_TEXT_CHARS = 200_000
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
               b"GIF89a": "image/gif"}
TABLE_EXT = {"csv": ",", "tsv": "\t"}
TEXT_EXT = {"txt", "md", "json", "html", "htm", "log", "py", "r", "yaml", "yml", "xml"}


def image_type(data: bytes) -> str | None:
    for magic, mime in IMAGE_TYPES.items():
        if data.startswith(magic):
            return mime
    return None


def kind_of(name: str, data: bytes) -> str:
    if image_type(data):
        return "image"
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in TABLE_EXT:
        return "table"
    if ext in TEXT_EXT:
        return "text"
    try:
        data[:4096].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary"


def _severity_rank(sev: str) -> int:
    return {"BLOCK": 3, "WARN": 2, "INFO": 1}.get(str(sev).upper(), 0)


def render_table(name: str, data: bytes, findings: list[dict]) -> dict:
    """Header and rows, each cell ``{"v", "sev", "msgs"}``; flagged cells carry a severity."""
    ext = name.rsplit(".", 1)[-1].lower()
    text = data.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=TABLE_EXT.get(ext, ","))
    rows, starts, prev = [], [], 0
    for row in reader:  # keep each row's first source line (1-based) to place findings
        if any(c.strip() for c in row):
            rows.append(row)
            starts.append(prev + 1)
        prev = reader.line_num
    header = rows[0] if rows else []
    body = rows[1:]
    by_line = {line: i for i, line in enumerate(starts[1:])}
    flags: dict[tuple[int, int], list[dict]] = {}
    col_by_name = {h.strip(): i for i, h in enumerate(header)}
    header_flags: dict[int, str] = {}
    for f in findings:
        loc = f.get("location") or {}
        sev = str(f.get("severity", "")).upper()
        named = list(loc.get("columns") or []) if isinstance(loc.get("columns"), list) else []
        if loc.get("header") and loc.get("column") is not None:
            named.append(loc["column"])
        for col in (col_by_name.get(str(n).strip()) for n in named):  # whole columns: the header is flagged
            if col is not None and _severity_rank(sev) > _severity_rank(header_flags.get(col, "")):
                header_flags[col] = sev
        row, col = loc.get("row"), loc.get("col_index")
        if isinstance(loc.get("line"), int) and loc["line"] in by_line:
            row = by_line[loc["line"]]
        if col is None and loc.get("column") in col_by_name:
            col = col_by_name[loc["column"]]
        if isinstance(row, int) and isinstance(col, int):
            flags.setdefault((row, col), []).append(f)
    out_rows = []
    for r, row in enumerate(body[:MAX_TABLE_ROWS]):
        cells = []
        for c, v in enumerate(row):
            fs = flags.get((r, c), [])
            sev = max((f.get("severity", "") for f in fs), key=_severity_rank, default="")
            cells.append({"v": v, "sev": str(sev).upper(), "msgs": [f.get("message", "") for f in fs]})
        out_rows.append(cells)
    return {"header": header, "header_flags": header_flags, "rows": out_rows,
            "truncated": max(0, len(body) - MAX_TABLE_ROWS),
            "flagged": sum(1 for (r, _c) in flags if r < MAX_TABLE_ROWS)}


def render_text(data: bytes, findings: list[dict]) -> dict:
    """Segments ``{"t", "sev", "msg"}`` of the text; flagged spans carry a severity."""
    text = data.decode("utf-8", errors="replace")[:MAX_TEXT_CHARS]
    spans = []
    for f in findings:
        loc = f.get("location") or {}
        s, e = loc.get("start"), loc.get("end")
        if isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text):
            spans.append((s, e, str(f.get("severity", "")).upper(), f.get("message", "")))
    spans.sort()
    segs, pos = [], 0
    for s, e, sev, msg in spans:
        if s < pos:  # overlapping spans: keep the first
            continue
        if s > pos:
            segs.append({"t": text[pos:s], "sev": "", "msg": ""})
        segs.append({"t": text[s:e], "sev": sev, "msg": msg})
        pos = e
    if pos < len(text):
        segs.append({"t": text[pos:], "sev": "", "msg": ""})
    return {"segments": segs, "flagged": len(spans)}
