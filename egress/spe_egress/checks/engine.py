"""``run_checks``: every check over every file of one export request.

Pure: the caller passes the bytes, the policy and the permit's context; nothing is read
from disk, the network, the clock or the environment.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections import OrderedDict
from typing import Any, Iterable, Mapping

from . import differencing
from .documents import check_html, check_office, check_pdf, embedded_text_images
from .filetype import check_file
from .identifiers import DATE as IDENTIFIER_DATE, find_identifiers
from .images import check_image
from .model import CheckContext, CheckPolicy, CheckReport, FileInput, FileReport, Finding, Severity
from .rowlevel import check_record_level
from .sdc import check_table, scan_cells
from .sniff import IMAGE, TEXT, Sniffed, decode_text, sniff
from .tables import classify, parse_table

SIDECAR_SUFFIX = ".sdc.json"
TABLE_TYPES = ("csv", "tsv")
_NEWLINE = re.compile("\n")


def run_checks(files: Iterable[FileInput], policy: CheckPolicy | None = None,
               ctx: CheckContext | None = None) -> CheckReport:
    policy = policy or CheckPolicy()
    ctx = ctx or CheckContext()
    files = list(files)
    report = CheckReport(policy)
    total = sum(len(f.data) for f in files)
    if policy.max_total_bytes is not None and total > policy.max_total_bytes:
        report.findings.append(Finding("request.size", Severity.BLOCK,
                                       f"The request holds {total:,} bytes, over the permit's limit of "
                                       f"{policy.max_total_bytes:,} bytes per request.", {"bytes": total}))
    sidecars = _sidecars(files)
    in_request: list[dict[str, Any]] = []
    for f in files:
        s = sniff(f.data, f.extension)
        findings = check_file(f, s, policy)
        findings += _name_identifiers(f, ctx)
        findings += _content(f, s, policy, ctx, sidecars.get(f.name), in_request)
        report.files.append(FileReport(f.name, len(f.data), f.sha256, s.type, s.family, _cap(findings, policy)))
    return report


def released_table_fingerprint(file_input: FileInput | str, data: bytes | None = None,
                               sidecar: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The ledger entry for a released table (store it per permit; pass the stored entries
    as ``CheckContext.released_tables``). ``None`` when the file is not a frequency table.
    Call it with a :class:`FileInput`, or with ``(name, data)``."""
    if isinstance(file_input, str):
        if data is None:
            raise TypeError("released_table_fingerprint(name, data): data is required with a name")
        file_input = FileInput(file_input, data)
    s = sniff(file_input.data, file_input.extension)
    if s.type not in TABLE_TYPES:
        return None
    table = parse_table(decode_text(file_input.data) or "", s.type)
    return differencing.fingerprint(file_input.name, file_input.sha256, table, classify(table, sidecar))


def _sidecars(files: list[FileInput]) -> dict[str, dict[str, Any]]:
    out = {}
    for f in files:
        if f.name.endswith(SIDECAR_SUFFIX):
            try:
                value = json.loads(decode_text(f.data) or "")
            except ValueError:
                continue
            if isinstance(value, dict):
                out[f.name[:-len(SIDECAR_SUFFIX)]] = value
    return out


def _name_identifiers(f: FileInput, ctx: CheckContext) -> list[Finding]:
    return [Finding(h.check, h.severity, h.message + " (in the file's name)",
                    {"field": "name", "start": h.start, "end": h.end})
            for h in find_identifiers(f.name, ctx.pseudonymous_ids, numbers_are_values=True, names=False)
            if h.severity is not Severity.INFO and h.check != IDENTIFIER_DATE]  # run dates in names are common


def _content(f: FileInput, s: Sniffed, policy: CheckPolicy, ctx: CheckContext,
             sidecar: Mapping[str, Any] | None, in_request: list[dict[str, Any]]) -> list[Finding]:
    if s.family == IMAGE:
        return check_image(s.type, f.data, ctx.pseudonymous_ids)
    if s.type == "pdf":
        return check_pdf(f.data, ctx.pseudonymous_ids)
    if s.type == "office":
        return check_office(f.data, ctx.pseudonymous_ids, _table_checks(policy, ctx))
    if s.family != TEXT:
        return []
    text = decode_text(f.data) or ""
    if s.type in TABLE_TYPES:
        table = parse_table(text, s.type)
        layout = classify(table, sidecar)
        out = check_table(table, layout, policy) + check_record_level(table, policy, None if sidecar else layout) \
            + scan_cells(table, ctx.pseudonymous_ids)
        entry = differencing.fingerprint(f.name, f.sha256, table, layout)
        if entry is not None:
            out += differencing.compare(table, layout, entry, ctx.released_tables, policy)
            out += differencing.compare(table, layout, entry, in_request, policy, same_request=True)
            in_request.append(entry)
        return out
    out = text_findings(text, ctx)
    if s.type in ("html", "svg"):
        out += check_html(text)
    if s.type in ("html", "svg", "ipynb", "markdown", "xml"):
        out += embedded_text_images(text, ctx.pseudonymous_ids, s.type)
    return out


def _table_checks(policy: CheckPolicy, ctx: CheckContext):
    """The table checks for a table found inside a document (a sheet, a Word table): the
    SDC rules, record-level detection and identifiers, each location extended by ``where``."""
    def run(csv_text: str, where: dict) -> list[Finding]:
        table = parse_table(csv_text, "csv")
        if not table.rows:
            return []
        layout = classify(table)
        found = check_table(table, layout, policy) + check_record_level(table, policy, layout) \
            + scan_cells(table, ctx.pseudonymous_ids)
        return [Finding(x.check, x.severity, x.message, {**where, **(x.location or {})}) for x in found]
    return run


def text_findings(text: str, ctx: CheckContext) -> list[Finding]:
    """Identifier findings for a text, located by character offsets and 1-based line."""
    newlines = [m.start() for m in _NEWLINE.finditer(text)]
    return [Finding(h.check, h.severity, h.message,
                    {"start": h.start, "end": h.end, "line": bisect_left(newlines, h.start) + 1})
            for h in find_identifiers(text, ctx.pseudonymous_ids)]


def _cap(findings: list[Finding], policy: CheckPolicy) -> list[Finding]:
    """At most ``max_findings_per_check`` findings per check, worst first, then one line
    saying how many more there are (at the worst severity of those left out)."""
    by_check: OrderedDict[str, list[Finding]] = OrderedDict()
    for f in findings:
        by_check.setdefault(f.check, []).append(f)
    out = []
    limit = policy.max_findings_per_check
    for check, group in by_check.items():
        if len(group) <= limit:
            out += group
            continue
        ranked = sorted(group, key=lambda f: -f.severity.rank)  # stable: keeps position order
        kept, dropped = ranked[:limit], ranked[limit:]
        kept_ids = {id(f) for f in kept}
        out += [f for f in group if id(f) in kept_ids]
        worst = max(dropped, key=lambda f: f.severity.rank).severity
        out.append(Finding(check, worst, f"{len(dropped)} more findings of this kind are not listed; fix the "
                                         "ones above and run the checks again.", {"omitted": len(dropped)}))
    return out
