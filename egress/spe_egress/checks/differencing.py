"""Differencing: a new count table compared with tables already released under the permit.

If a researcher releases counts for all patients and later the same table for all patients
but one small group, subtracting the two reveals that group. The gateway keeps, per permit,
a ledger of :func:`fingerprint` entries of released frequency tables; :func:`compare` lines a
new table up with each entry by row keys (the values of every column that is not a count
column) and count-column names, and flags cells whose counts differ by less than the
minimum cell count.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .model import CheckPolicy, Finding, Severity
from .tables import FREQUENCY, Layout, Table, column_name, row_label

LEDGER_VERSION = 1
MIN_OVERLAP = 0.5  # share of the new table's count cells that must line up with a released one


def fingerprint(name: str, sha256: str, table: Table, layout: Layout) -> dict[str, Any] | None:
    """A JSON-serialisable ledger entry for a frequency table, or ``None`` for other tables."""
    if layout.kind != FREQUENCY or not layout.count_columns:
        return None
    width = max([len(table.header), *(len(row) for row in table.rows)] or [0])
    key_columns = [c for c in range(width) if c not in layout.count_columns]
    rows, seen = [], {}
    for r in range(len(table.rows)):
        key = [table.cell(r, c).strip() for c in key_columns] or [f"#{r}"]
        repeat = seen[tuple(key)] = seen.get(tuple(key), -1) + 1
        if repeat:
            key.append(f"#{repeat}")  # the same labels again: tell the rows apart by order
        counts = []
        for c in layout.count_columns:
            v = table.number(table.cell(r, c))
            counts.append(v if isinstance(v, (int, float)) else None)
        rows.append({"key": key, "counts": counts})
    return {
        "version": LEDGER_VERSION,
        "name": name,
        "sha256": sha256,
        "kind": FREQUENCY,
        "key_columns": [column_name(table, c) for c in key_columns],
        "count_columns": [column_name(table, c) for c in layout.count_columns],
        "rows": rows,
    }


def _cells(entry: Mapping[str, Any]) -> dict[tuple[tuple[str, ...], str], float]:
    cols = list(entry.get("count_columns", []))
    cells = {}
    for row in entry.get("rows", []):
        key = tuple(row.get("key", []))
        for col, v in zip(cols, row.get("counts", [])):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                cells[(key, col)] = v
    return cells


def compare(table: Table, layout: Layout, new_entry: Mapping[str, Any],
            released: Sequence[Mapping[str, Any]], policy: CheckPolicy,
            same_request: bool = False) -> list[Finding]:
    new_cells = _cells(new_entry)
    if not new_cells:
        return []
    col_index = {column_name(table, c): c for c in layout.count_columns}
    row_index = {tuple(r["key"]): i for i, r in enumerate(new_entry["rows"])}
    t = policy.min_cell_count
    out: list[Finding] = []
    for entry in released:
        if entry.get("version") != LEDGER_VERSION or entry.get("sha256") == new_entry.get("sha256"):
            continue  # the very same file released again discloses nothing new
        old_cells = _cells(entry)
        common = [k for k in new_cells if k in old_cells]
        if len(common) < max(1, MIN_OVERLAP * len(new_cells)):
            continue
        diffs = {k: new_cells[k] - old_cells[k] for k in common}
        nonzero = {k: d for k, d in diffs.items() if d != 0}
        small = {k: d for k, d in nonzero.items() if abs(d) < t}
        if not small:
            continue
        nested = len(small) == len(nonzero)  # every change is small: one table is the other minus a few people
        severity = Severity.BLOCK if nested else Severity.WARN
        other = entry.get("name", "a released table")
        origin = "another file in this request" if same_request else "a table already released under this permit"
        for (key, col), d in small.items():
            r, c = row_index[key], col_index[col]
            out.append(Finding(
                "sdc.differencing", severity,
                f"The count at row {r} ('{row_label(table, layout, r)}'), column '{col}' is {new_cells[(key, col)]:g}; "
                f"in '{other}' ({origin}) the same cell is {old_cells[(key, col)]:g}. The difference, {abs(d):g}, is "
                f"below the minimum of {t}: subtracting one table from the other reveals a group of {abs(d):g} "
                + ("people, and every other change between the tables is as small." if nested else "people."),
                {"row": r, "column": col, "col_index": c, "line": table.lines[r], "released": other,
                 "released_sha256": entry.get("sha256"), "released_value": old_cells[(key, col)],
                 "value": new_cells[(key, col)]}))
    return out
