"""Reading CSV/TSV tables and deciding what kind of statistical table they are.

The rules (also in README.md):

* Leading lines starting with ``#`` are comments. A comment ``# sdc: key=value; ...`` is a
  *directive* that declares the table (a ``<name>.sdc.json`` sidecar in the same request
  does the same with a JSON object). Keys: ``kind`` (``frequency`` | ``magnitude`` |
  ``none``), ``counts`` (count columns), ``value``, ``contributor``, ``groups``.
* Row numbers in findings are 0-based over the data rows after the header, blank lines
  skipped (``line`` gives the 1-based source line as well).
* Without a declaration: a table with a ``contributor`` column, or with ``total`` and
  ``top1``/``largest`` columns, is a *magnitude* table; a table with integer columns named
  like counts (``n``, ``count``, ``n_patients``, ``cases``, ``*_count`` ...) is a
  *frequency* table over those columns; a cross-tab whose non-label columns are all
  non-negative integers and none is named like a measurement (``age``, ``year``,
  ``mean``, ``score`` ...) is a *frequency* table over all of them. Anything else is
  *descriptive* and only scanned for identifiers.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

FREQUENCY, MAGNITUDE, DESCRIPTIVE, DECLARED_NONE = "frequency", "magnitude", "descriptive", "none"

_COUNT_NAME = re.compile(
    r"^(?:n|count|counts|freq|frequency|number|num|no|total|totals|patients|subjects|cases|persons|"
    r"people|individuals|records|studies|participants|deaths|events)$"
    r"|^(?:n|num|number|count|no|nb)(?:_|_of_|of_)\w+$|^\w+_(?:n|count|counts|freq|total)$")
_MEASURE_NAME = re.compile(
    r"(?:^|_)(?:year|yr|age|month|day|week|date|time|id|idx|index|rank|epoch|fold|seed|step|iter|"
    r"dose|mean|avg|average|median|sd|std|var|min|max|score|auc|loss|acc|accuracy|pct|percent|"
    r"prop|proportion|ratio|rate|p|pvalue|ci|lower|upper|size|volume|length|weight|height|bmi|"
    r"value|amount|cost|mm|cm|ml|kg|hu|slice|voxel|pixel|dim|x|y|z)(?:_|$)")
_SUPPRESSED = re.compile(r"^(?:\*+|c|\[c\]|x|\.\.|-|–|<\s*\d+|suppressed|redacted|n/?a|na|nan|null|none)$", re.I)
_DIRECTIVE = re.compile(r"^#\s*sdc\s*:\s*(.*)$", re.I)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # 1-based source line of each data row
    delimiter: str
    directive: dict[str, Any] = field(default_factory=dict)
    decimal_comma: bool = False

    _numbers: dict[str, float | int | None] = field(default_factory=dict, repr=False)

    def number(self, value: str) -> float | int | None:
        """The cell's number (memoised: tables repeat their values a lot), or ``None``."""
        try:
            return self._numbers[value]
        except KeyError:
            n = self._numbers[value] = parse_number(value, self.decimal_comma)
            return n

    def cell(self, r: int, c: int) -> str:
        row = self.rows[r]
        return row[c] if c < len(row) else ""


def normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(value: str, decimal_comma: bool = False) -> float | int | None:
    """A cell's value as a number: plain integers and decimals (a decimal comma where the
    table uses ``;``), never Python's extras such as ``1_000``, ``inf`` or ``nan``."""
    s = value.strip().replace("\u2212", "-")
    if not s:
        return None
    if decimal_comma:
        s = s.replace(".", "").replace(",", ".") if "," in s else s
    if _INT.fullmatch(s):
        return int(s)
    if _FLOAT.fullmatch(s):
        return float(s)
    return None


def is_suppressed(value: str) -> bool:
    return bool(_SUPPRESSED.match(value.strip()))


def parse_directive(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in re.split(r"[;]", text):
        if "=" not in part:
            continue
        key, _, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        out[key] = [v.strip() for v in value.split(",") if v.strip()] if key in ("counts", "groups") else value
    return out


def parse_table(text: str, table_type: str = "csv") -> Table:
    """Parse decoded CSV/TSV text. Never raises on odd input; ragged rows are kept."""
    lines = text.splitlines(keepends=True)
    directive: dict[str, Any] = {}
    skip = 0
    for line in lines:
        if line.strip().startswith("#"):
            m = _DIRECTIVE.match(line.strip())
            if m:
                directive.update(parse_directive(m.group(1)))
            skip += 1
        elif not line.strip():
            skip += 1
        else:
            break
    body = "".join(lines[skip:])
    delimiter = "\t" if table_type == "tsv" else _guess_delimiter(body.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    header: list[str] | None = None
    rows, row_lines = [], []
    previous = 0
    try:
        for row in reader:
            first_line = skip + previous + 1
            previous = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                continue
            rows.append(row)
            row_lines.append(first_line)
    except csv.Error:
        pass
    table = Table(header or [], rows, row_lines, delimiter, directive)
    table.decimal_comma = delimiter == ";" and _uses_decimal_comma(table)
    return table


def _guess_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _uses_decimal_comma(table: Table) -> bool:
    cells = [c.strip() for row in table.rows[:200] for c in row]
    return any(re.fullmatch(r"-?\d+,\d+", c) for c in cells)


# ------------------------------------------------------------------ classification
@dataclass
class Layout:
    kind: str
    label_columns: list[int] = field(default_factory=list)
    count_columns: list[int] = field(default_factory=list)
    value_column: int | None = None
    contributor_column: int | None = None
    group_columns: list[int] = field(default_factory=list)
    total_column: int | None = None
    top_columns: list[int] = field(default_factory=list)  # largest first
    contributors_column: int | None = None
    reason: str = ""


def _column_profile(table: Table, c: int) -> tuple[int, int, int, bool]:
    """(numbers, non-numbers, integers, any negative) over the non-empty, unsuppressed cells."""
    numbers = text = ints = 0
    negative = False
    for r in range(len(table.rows)):
        v = table.cell(r, c).strip()
        if not v or is_suppressed(v):
            continue
        n = table.number(v)
        if n is None:
            text += 1
        else:
            numbers += 1
            ints += isinstance(n, int)
            negative |= n < 0
    return numbers, text, ints, negative


def classify(table: Table, sidecar: Mapping[str, Any] | None = None) -> Layout:
    declared = {**table.directive, **(dict(sidecar) if sidecar else {})}
    names = [normalise_name(h) for h in table.header]
    width = max([len(table.header), *(len(r) for r in table.rows)] or [0])
    profiles = [_column_profile(table, c) for c in range(width)]
    labels = [c for c, (num, txt, _, _) in enumerate(profiles) if txt > num]

    def find(*wanted: str) -> int | None:
        for w in wanted:
            if normalise_name(w) in names:
                return names.index(normalise_name(w))
        return None

    def integer(c: int) -> bool:
        num, txt, ints, neg = profiles[c]
        return num > 0 and txt == 0 and ints == num

    kind = str(declared.get("kind", "")).lower()
    if kind in ("none", "descriptive"):
        return Layout(DECLARED_NONE, labels, reason="declared not a statistical table")
    if kind == "frequency":
        cols = [find(n) for n in declared.get("counts", [])] if declared.get("counts") else \
            [c for c in range(width) if c not in labels]
        # A declaration adds count columns; it cannot hide ones the detection would check.
        auto = classify(Table(table.header, table.rows, table.lines, table.delimiter, {}, table.decimal_comma))
        found = {c for c in cols if c is not None} | (set(auto.count_columns) if auto.kind == FREQUENCY else set())
        return Layout(FREQUENCY, labels, sorted(found), reason="declared frequency table")

    contributor = find(str(declared.get("contributor", "")), "contributor", "contributor_id")
    total, top1 = find("total"), find("top1", "largest", "max_contribution")
    if kind == "magnitude" or contributor is not None or (total is not None and top1 is not None):
        if contributor is not None or declared.get("value"):
            value = find(str(declared.get("value", "")), "value", "contribution", "amount")
            if value is None:
                numeric = [c for c in range(width) if c not in labels and c != contributor]
                value = numeric[0] if numeric else None
            groups = [find(g) for g in declared.get("groups", [])] if declared.get("groups") else \
                [c for c in labels if c != contributor]
            return Layout(MAGNITUDE, labels, value_column=value, contributor_column=contributor,
                          group_columns=[g for g in groups if g is not None],
                          reason="magnitude table with one row per contributor")
        if total is not None and top1 is not None:
            tops = [top1] + [c for c in (find("top2", "second_largest"), find("top3", "third_largest")) if c is not None]
            return Layout(MAGNITUDE, labels, total_column=total, top_columns=tops,
                          contributors_column=find("contributors", "n_contributors", "n"),
                          reason="magnitude table with total and largest contributions")

    data_cols = [c for c in range(width) if c not in labels]
    measure_named = any(c < len(names) and _MEASURE_NAME.search(names[c]) for c in data_cols)
    if labels and data_cols and not measure_named and all(integer(c) and not profiles[c][3] for c in data_cols):
        return Layout(FREQUENCY, labels, data_cols, reason="cross-tabulation of whole numbers")
    named = [c for c in range(width) if c < len(names) and _COUNT_NAME.match(names[c]) and integer(c)]
    if named:
        return Layout(FREQUENCY, labels, named, reason="columns named as counts")
    return Layout(DESCRIPTIVE, labels, reason="not recognised as a frequency or magnitude table")


def row_label(table: Table, layout: Layout, r: int) -> str:
    parts = [table.cell(r, c).strip() for c in layout.label_columns if table.cell(r, c).strip()]
    return " / ".join(parts) if parts else f"row {r}"


def column_name(table: Table, c: int) -> str:
    return table.header[c] if c < len(table.header) else f"column {c}"
