"""Statistical disclosure control on tables: the ACRO rule set at the permit's thresholds,
plus identifier scanning of every cell.

Check names: ``sdc.threshold`` (minimum cell count), ``sdc.zero`` (zeros disclosive),
``sdc.negative``, ``sdc.dominance`` (N-K rule), ``sdc.p-ratio`` (p% rule),
``sdc.contributor-detail`` (a magnitude table shows individual contributions), ``sdc.table-kind``
(what the table was taken for; INFO, or WARN where the researcher declared it exempt).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import AbstractSet, Any

from . import national_ids
from .identifiers import BIRTH_WORDS, CELL_SEPARATOR, NATIONAL_ID, PHONE, find_identifiers
from .names import NAME_COLUMN
from .model import CheckPolicy, Finding, Severity
from .tables import (DECLARED_NONE, DESCRIPTIVE, FREQUENCY, MAGNITUDE, Layout, Table,
                     column_name, is_suppressed, normalise_name, row_label)


def cell_location(table: Table, r: int, c: int, **extra: Any) -> dict[str, Any]:
    return {"row": r, "column": column_name(table, c), "col_index": c, "line": table.lines[r], **extra}


def _where(table: Table, layout: Layout, r: int, c: int) -> str:
    return f"row {r} ('{row_label(table, layout, r)}'), column '{column_name(table, c)}'"


def check_table(table: Table, layout: Layout, policy: CheckPolicy) -> list[Finding]:
    findings = [_kind_finding(table, layout)]
    if layout.kind == FREQUENCY:
        findings += _frequency(table, layout, policy)
    elif layout.kind == MAGNITUDE:
        findings.append(Finding(
            "sdc.contributor-detail", Severity.WARN,
            "This table lists individual contributions (one row per contributor, or the largest contributions "
            "themselves). That detail lets the checks apply the dominance rules, but it is disclosive in itself: "
            "release only the aggregated totals that pass.",
            {"columns": [column_name(table, c) for c in
                         ([layout.contributor_column, layout.value_column] if layout.total_column is None
                          else layout.top_columns) if c is not None]}))
        if layout.total_column is None:
            findings += _magnitude_long(table, layout, policy)
        else:
            findings += _magnitude_summary(table, layout, policy)
    return findings


def _kind_finding(table: Table, layout: Layout) -> Finding:
    if layout.kind == DECLARED_NONE:
        return Finding("sdc.table-kind", Severity.WARN,
                       "The researcher declared this table is not a statistical table, so no cell-count "
                       "or dominance rules were applied. Confirm it holds no counts or totals of people.")
    if layout.kind == DESCRIPTIVE:
        return Finding("sdc.table-kind", Severity.INFO,
                       "This table was not recognised as a frequency (counts) or magnitude table, so only "
                       "identifiers were checked. If it holds counts, name the count columns 'n' or 'count' "
                       "or add a '# sdc: kind=frequency' first line.")
    if layout.kind == FREQUENCY and not layout.count_columns:
        return Finding("sdc.table-kind", Severity.WARN,
                       "The table was declared a frequency table, but none of the declared count columns exists, "
                       "so no cell was checked. Fix the declaration's column names.")
    cols = layout.count_columns if layout.kind == FREQUENCY else \
        [c for c in (layout.value_column, layout.total_column) if c is not None]
    names = ", ".join(f"'{column_name(table, c)}'" for c in cols) or "none"
    return Finding("sdc.table-kind", Severity.INFO,
                   f"Checked as a {layout.kind} table ({layout.reason}); columns checked: {names}.",
                   {"columns": [column_name(table, c) for c in cols], "kind": layout.kind})


def _frequency(table: Table, layout: Layout, policy: CheckPolicy) -> list[Finding]:
    out = []
    t = policy.min_cell_count
    for r in range(len(table.rows)):
        for c in layout.count_columns:
            raw = table.cell(r, c)
            value = table.number(raw)
            if value is None or is_suppressed(raw):
                continue
            where = _where(table, layout, r, c)
            if 0 < value < t:
                out.append(Finding("sdc.threshold", Severity.BLOCK,
                                   f"The count at {where} is {value:g}, below the minimum of {t}. A group "
                                   "this small can identify individuals; merge categories or suppress the cell.",
                                   cell_location(table, r, c, value=value)))
            elif value == 0 and policy.zeros_disclosive:
                out.append(Finding("sdc.zero", Severity.WARN,
                                   f"The count at {where} is 0. A zero can disclose that nobody in a group has "
                                   "an attribute (e.g. every patient in it had the diagnosis); check it is a "
                                   "structural zero that reveals nothing.", cell_location(table, r, c, value=0)))
            elif value < 0:
                out.append(Finding("sdc.negative", Severity.WARN,
                                   f"The count at {where} is negative ({value:g}); a count table should not hold "
                                   "negative numbers. Check the table.", cell_location(table, r, c, value=value)))
    return out


def _cell_rules(contributions: list[float], policy: CheckPolicy) -> list[tuple[str, str]]:
    """ACRO's tests for one magnitude cell: (check, plain reason) for each one it fails."""
    failed = []
    values = sorted((abs(v) for v in contributions), reverse=True)
    if 0 < len(values) < policy.min_cell_count:
        failed.append(("sdc.threshold", f"it has {len(values)} contributors, fewer than the minimum of "
                                        f"{policy.min_cell_count}"))
    return failed + _dominance_rules(values, sum(values), policy)


def _dominance_rules(tops: list[float], total: float, policy: CheckPolicy) -> list[tuple[str, str]]:
    """N-K and p% rules from the largest contributions (largest first, absolute values) and
    the cell's total. The N-K rule is skipped when fewer than n largest values are known and
    they do not already add up to the whole total."""
    failed = []
    if total <= 0 or not tops or tops[0] <= 0:
        return failed
    n = policy.dominance_n
    if len(tops) >= n or sum(tops) >= total:
        top = sum(tops[:n])
        if top / total > policy.dominance_k:
            failed.append(("sdc.dominance", f"its {n} largest contributors make up "
                                            f"{top / total:.0%} of the total (more than {policy.dominance_k:.0%})"))
    rest = total - sum(tops[:2])
    if rest < policy.p_ratio * tops[0]:
        failed.append(("sdc.p-ratio", "the total less its two largest contributions is "
                                      f"{max(rest, 0) / tops[0]:.1%} of the largest (less than {policy.p_ratio:.0%}), "
                                      "so the second largest contributor could estimate the largest closely"))
    return failed


_RULE_SEVERITY = {"sdc.threshold": Severity.BLOCK, "sdc.dominance": Severity.BLOCK, "sdc.p-ratio": Severity.BLOCK}


def _magnitude_long(table: Table, layout: Layout, policy: CheckPolicy) -> list[Finding]:
    if layout.value_column is None:
        return [Finding("sdc.table-kind", Severity.WARN, "A magnitude table was declared but no value column "
                        "was found; name it 'value' or declare 'value=<column>'.")]
    groups: dict[tuple[str, ...], list[int]] = {}
    for r in range(len(table.rows)):
        if table.number(table.cell(r, layout.value_column)) is None:
            continue
        key = tuple(table.cell(r, g).strip() for g in layout.group_columns)
        groups.setdefault(key, []).append(r)
    out = []
    vc = layout.value_column
    for key, rows in groups.items():
        values = [float(table.number(table.cell(r, vc)) or 0) for r in rows]
        label = " / ".join(k for k in key if k) or "all rows"
        largest = rows[max(range(len(rows)), key=lambda i: abs(values[i]))]
        group = {column_name(table, g): v for g, v in zip(layout.group_columns, key)}
        for check, reason in _cell_rules(values, policy):
            out.append(Finding(check, _RULE_SEVERITY[check],
                               f"The cell for '{label}' (column '{column_name(table, vc)}') is disclosive: "
                               f"{reason}. Publishing it could reveal a single contributor's value; combine "
                               "groups or suppress the cell.",
                               cell_location(table, largest, vc, rows=rows, group=group)))
    return out


def _magnitude_summary(table: Table, layout: Layout, policy: CheckPolicy) -> list[Finding]:
    out = []
    tc = layout.total_column
    for r in range(len(table.rows)):
        total = table.number(table.cell(r, tc))
        tops = [table.number(table.cell(r, c)) for c in layout.top_columns]
        if total is None or not tops or tops[0] is None:
            continue
        tops = sorted((abs(float(t)) for t in tops if t is not None), reverse=True)
        failed = _dominance_rules(tops, abs(float(total)), policy)
        if layout.contributors_column is not None:
            n = table.number(table.cell(r, layout.contributors_column))
            if n is not None and 0 < n < policy.min_cell_count:
                failed.insert(0, ("sdc.threshold", f"it has {n:g} contributors, fewer than the minimum of "
                                                   f"{policy.min_cell_count}"))
        for check, reason in failed:
            out.append(Finding(check, _RULE_SEVERITY[check],
                               f"The total at {_where(table, layout, r, tc)} is disclosive: {reason}. Combine "
                               "groups or suppress the cell.", cell_location(table, r, tc, value=total)))
    return out


# ------------------------------------------------------------------ identifiers in cells
def scan_cells(table: Table, ids: AbstractSet[str]) -> list[Finding]:
    """Identifiers in the header and in every cell, located by row, column and the character
    span inside the cell. Each column is scanned as one text (cells joined by a separator no
    pattern crosses), with the column's context: a ``birth`` column makes every date a date
    of birth, a ``date`` column makes ``YYYYMMDD`` numbers dates. Plain numbers are never
    phone numbers and are only looked at where dates or pseudonymous IDs could hide in them."""
    out = []
    for c, head in enumerate(table.header):
        for hit in find_identifiers(head, ids):
            out.append(Finding(hit.check, hit.severity, hit.message + " (in the table's header)",
                               {"row": None, "column": head, "col_index": c, "header": True,
                                "start": hit.start, "end": hit.end}))
    width = max([len(table.header), *(len(r) for r in table.rows)] or [0])
    per_cell: list[tuple[int, int, Finding]] = []
    for c in range(width):
        header = table.header[c] if c < len(table.header) else ""
        name = normalise_name(header)
        birth = bool(BIRTH_WORDS.search(header))
        dated = "date" in name.split("_") or name.endswith("date")
        id_header = any(s.context.search(header) for s in national_ids.SCHEMES)
        parts, starts, numeric, bare = [], [], [], []
        pos = 0
        for r in range(len(table.rows)):
            cell = table.cell(r, c).replace(CELL_SEPARATOR, " ")
            is_number = table.number(cell) is not None
            if is_number:
                bare.append((r, cell))
            if is_number and not (birth or dated or id_header) and cell.strip().lower() not in ids:
                cell = ""  # a plain number holds no UID, e-mail, date or phone number
            starts.append(pos)
            numeric.append(is_number)
            parts.append(cell)
            pos += len(cell) + 1
        if not id_header:
            per_cell += _national_id_column(table, c, bare)
        if not any(parts):
            continue
        joined = CELL_SEPARATOR.join(parts)
        for hit in find_identifiers(joined, ids, birth_context=birth, date_context=dated, header=header,
                                    name_column=bool(NAME_COLUMN.match(name))):
            r = bisect_right(starts, hit.start) - 1
            if hit.check == PHONE and numeric[r]:
                continue
            s, e = hit.start - starts[r], hit.end - starts[r]
            per_cell.append((r, c, Finding(hit.check, hit.severity, hit.message,
                                           cell_location(table, r, c, start=s, end=e))))
    per_cell.sort(key=lambda t: (t[0], t[1]))  # reading order: row by row
    return out + [f for _, _, f in per_cell]


def _national_id_column(table: Table, c: int, bare: list[tuple[int, str]]) -> list[tuple[int, int, Finding]]:
    """A column of bare numbers nearly all of which pass one scheme's check digit is a column
    of national identifiers, whatever its header says."""
    found = national_ids.column_scheme([v for _, v in bare])
    if found is None:
        return []
    scheme, ok = found
    total = len({v.strip() for _, v in bare if v.strip()})
    out = []
    for r, v in bare:
        raw = v.strip()
        if scheme.pattern.fullmatch(raw) and scheme.validate(scheme.normalise(raw)):
            start = v.index(raw)
            out.append((r, c, Finding(
                NATIONAL_ID, Severity.BLOCK,
                f"'{raw}' is a valid {scheme.country} {scheme.name}: {ok} of the {total} distinct numbers in column "
                f"'{column_name(table, c)}' pass its check ({scheme.how}), so the column holds national "
                "identifiers. Remove it.", cell_location(table, r, c, start=start, end=start + len(raw)))))
    return out
