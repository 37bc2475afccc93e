"""Record-level tables: one row per person (patient, subject) rather than an aggregate.

Row-level data leaving the environment is the commonest real disclosure: such a table is
neither a frequency nor a magnitude table, so the SDC rules never see it. The evidence,
each named in the finding:

strong (one is enough)
  * ``id-column``: a column named like a person identifier (``patient_id``, ``subject``,
    ``pid``, ``mrn``, ``id`` …) with ≥ 90 % distinct values over ≥ 5 rows; or, in a table
    without count columns, a column of code-like values (``P0001``, ``sub-01``, hex) with
    ≥ 95 % distinct values over ≥ 20 rows;
  * ``survival-pair``: a time-to-event column (``os_months``, ``time``, ``follow_up_days``
    …) next to an event/status column holding only 0/1 (or alive/dead, yes/no), ≥ 10 rows;
  * ``quasi-identifiers``: ≥ 2 columns such as ``age``, ``sex``, ``postcode``, ``bmi``,
    ``weight`` in a table without count columns, and rows whose combination of them occurs
    fewer than ``min_cell_count`` times (k-anonymity at the permit's threshold);
weak (record-level only in a table without count columns)
  * ``per-row-dates``: a column of full dates, ≥ 10 rows, ≥ 50 % distinct;
  * ``few-repeats``: ≥ 50 rows whose measurement columns hardly repeat (≥ 90 % distinct),
    in a table that is not a series (``epoch``, ``threshold``, ``fpr`` …) nor a table of
    statistical results (``p``, ``coef``, ``hr``, ``log2fc`` …).

Record-level tables are BLOCKed unless the permit's export policy allows record-level
outputs (``exportPolicy.recordLevelOutputs.allowed``); then they are WARN.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .model import CheckPolicy, Finding, Severity
from .tables import DESCRIPTIVE, DECLARED_NONE, Layout, Table, classify, column_name, is_suppressed, normalise_name

CHECK = "sdc.record-level"

_PERSON_ID = re.compile(
    r"^(?:id|ids|pid|mrn|psn|eid|uid|nhi|ehr_id|patient|subject|participant|person|individual|"
    r"pseudonym|pseudo_id|sub|pat|case_id|record_id|study_subject)$"
    r"|^(?:patient|subject|participant|person|individual|pseudonym|pseudo|pat|sub|record|case|donor|"
    r"member|client|resident|proband)_?(?:id|ids|no|nr|num|number|code|key|uid|ref|identifier)$"
    r"|^(?:id|mrn)_(?:patient|subject|participant|person)$")
_CODE_VALUE = re.compile(r"^(?=.*\d)(?:[A-Za-z]{0,8}[-_ ]?\d{2,}[A-Za-z0-9-]*|[0-9a-fA-F]{8,}|[A-Za-z]+\d+[A-Za-z]*)$")
_TIME_NAME = re.compile(
    r"(?:^|_)(?:os|pfs|dfs|efs|rfs|dss|ttp|tte|survival|surv|follow_?up|fu|futime|time|duration|days|months|"
    r"years|weeks|time_to_\w+|t)(?:_|$)")
_EVENT_NAME = re.compile(
    r"(?:^|_)(?:event|events|status|death|dead|died|deceased|censor|censored|censoring|vital_status|relapse|"
    r"recurrence|progression|progressed|outcome|fustat|cens|delta|e)(?:_|$)")
_COUNT_LIKE = re.compile(r"^(?:n|num|number|count|no|nb)_|_(?:n|count|counts)$|^(?:n|count|counts)$|risk")
_BINARY = [{"0", "1"}, {"alive", "dead"}, {"yes", "no"}, {"true", "false"}, {"y", "n"}, {"censored", "event"},
           {"deceased", "alive"}]
_QUASI = re.compile(
    r"^(?:age|age_years|age_at_\w+|sex|gender|geslacht|sexe|geschlecht|sesso|sexo|kon|zip|zipcode|zip_code|"
    r"postcode|post_code|postal_code|plz|cp|ethnicity|race|ethnic_group|height|height_cm|weight|weight_kg|bmi|"
    r"birth_year|year_of_birth|yob|dob|date_of_birth|birthdate|birth_date|nationality|country_of_birth|"
    r"occupation|marital_status|education)$")
_DATE_VALUE = re.compile(r"^(?:\d{4}-\d{1,2}-\d{1,2}(?:[T ][\d:.]+Z?)?|\d{1,2}[./-]\d{1,2}[./-]\d{4}|\d{4}/\d{1,2}/\d{1,2})$")
_SERIES = re.compile(
    r"(?:^|_)(?:epoch|epochs|step|steps|iter|iteration|fold|seed|threshold|thresholds|cutoff|fpr|tpr|recall|"
    r"precision|sensitivity|specificity|bin|bins|quantile|percentile|x|lr|learning_rate|batch|run|lambda|alpha|"
    r"time_point|timepoint|frame|slice|k)(?:_|$)")
_RESULT = re.compile(
    r"(?:^|_)(?:p|pval|pvalue|p_value|padj|q|qval|fdr|coef|coefficient|beta|estimate|hr|or|rr|ci|se|stderr|"
    r"log2fc|logfc|fc|importance|shap|weight_importance|t_stat|z|stat|statistic|auc|f1|r2|rmse|mae)(?:_|$)")


@dataclass(frozen=True)
class Evidence:
    kind: str
    strong: bool
    columns: tuple[str, ...]
    text: str


def _values(table: Table, c: int) -> list[str]:
    out = []
    for r in range(len(table.rows)):
        v = table.cell(r, c).strip()
        if v and not is_suppressed(v):
            out.append(v)
    return out


def record_level_evidence(table: Table, policy: CheckPolicy,
                          layout: Layout | None = None) -> tuple[list[Evidence], bool]:
    """(evidence, has_count_columns). ``has_count_columns`` from the automatic layout (``layout``
    when the table declares nothing): a declaration cannot make row-level data look aggregate."""
    auto: Layout = layout if layout is not None and not table.directive else \
        classify(Table(table.header, table.rows, table.lines, table.delimiter, {}, table.decimal_comma))
    rows = len(table.rows)
    width = max([len(table.header), *(len(r) for r in table.rows)] or [0])
    names = [normalise_name(table.header[c]) if c < len(table.header) else "" for c in range(width)]
    values = [_values(table, c) for c in range(width)]
    # Aggregate counts are mostly at or above the threshold; "counts" that are mostly below it
    # (lesion_count 0-6 on every row) are per-row attributes, not aggregates.
    counted = auto.kind not in (DESCRIPTIVE, DECLARED_NONE) and (
        not auto.count_columns or any(_median_count(table, values[c]) >= policy.min_cell_count
                                      for c in auto.count_columns))
    series = any(_SERIES.search(n) for n in names)
    results = any(_RESULT.search(n) for n in names)
    out: list[Evidence] = []
    if rows < 5:
        return out, counted

    # 1. an identifier column
    for c in range(width):
        vs = values[c]
        if len(vs) < 5:
            continue
        distinct = len(set(vs))
        if _PERSON_ID.match(names[c]) and distinct >= 0.9 * len(vs) and c not in auto.count_columns:
            out.append(Evidence("id-column", True, (column_name(table, c),),
                                f"column '{column_name(table, c)}' is named like a person identifier and has "
                                f"{distinct} distinct values in {len(vs)} rows"))
        elif (not counted and not results and not series and len(vs) >= 20 and distinct >= 0.95 * len(vs)
              and sum(1 for v in vs if _CODE_VALUE.match(v)) >= 0.9 * len(vs)
              and sum(1 for v in vs if table.number(v) is None) >= 0.9 * len(vs)):
            out.append(Evidence("id-column", True, (column_name(table, c),),
                                f"column '{column_name(table, c)}' holds {distinct} distinct codes in {len(vs)} "
                                f"rows (e.g. '{vs[0]}'): one row per subject"))

    # 2. survival time next to a 0/1 event
    if rows >= 10:
        times = [c for c in range(width) if _TIME_NAME.search(names[c]) and not _COUNT_LIKE.search(names[c])
                 and values[c] and all(isinstance(table.number(v), (int, float)) and table.number(v) >= 0
                                       for v in values[c])]
        events = [c for c in range(width) if _EVENT_NAME.search(names[c]) and not _COUNT_LIKE.search(names[c])
                  and len(values[c]) >= 10 and any({v.lower() for v in values[c]} <= b for b in _BINARY)]
        if times and events:
            t, e = times[0], events[0]
            out.append(Evidence("survival-pair", True, (column_name(table, t), column_name(table, e)),
                                f"time-to-event column '{column_name(table, t)}' with a 0/1 event column "
                                f"'{column_name(table, e)}' over {rows} rows: one row per patient"))

    # 3. quasi-identifiers whose combinations are rarer than the threshold
    quasi = [c for c in range(width) if _QUASI.match(names[c])]
    if len(quasi) >= 2 and not counted and rows >= 10:
        combos = Counter(tuple(table.cell(r, c).strip().lower() for c in quasi) for r in range(rows))
        rare = sum(n for n in combos.values() if n < policy.min_cell_count)
        unique = sum(1 for n in combos.values() if n == 1)
        if rare:
            cols = tuple(column_name(table, c) for c in quasi)
            out.append(Evidence("quasi-identifiers", True, cols,
                                f"{rare} of {rows} rows have a combination of ({', '.join(cols)}) shared by fewer "
                                f"than {policy.min_cell_count} rows ({unique} are unique)"))

    # 4. dates on every row
    if rows >= 10:
        for c in range(width):
            vs = values[c]
            if len(vs) >= 10 and sum(1 for v in vs if _DATE_VALUE.match(v)) >= 0.8 * len(vs) \
                    and len(set(vs)) >= 0.5 * len(vs):
                out.append(Evidence("per-row-dates", False, (column_name(table, c),),
                                    f"column '{column_name(table, c)}' has a full date on each row "
                                    f"({len(set(vs))} distinct dates in {len(vs)} rows)"))
                break

    # 5. many rows whose measurements hardly repeat
    if rows >= 50 and not series and not results:
        measured = [c for c in range(width) if len(values[c]) >= 0.8 * rows
                    and all(table.number(v) is not None for v in values[c])
                    and len(set(values[c])) >= 0.9 * len(values[c])]
        if measured:
            c = measured[0]
            out.append(Evidence("few-repeats", False, tuple(column_name(table, x) for x in measured),
                                f"{rows} rows whose values hardly repeat (column '{column_name(table, c)}' has "
                                f"{len(set(values[c]))} distinct values in {len(values[c])} rows)"))
    return out, counted


def _median_count(table: Table, vs: list[str]) -> float:
    nums = sorted(n for n in (table.number(v) for v in vs) if n is not None)
    return nums[len(nums) // 2] if nums else 0


def is_record_level(evidence: list[Evidence], counted: bool) -> bool:
    return any(e.strong for e in evidence) or (bool(evidence) and not counted)


def check_record_level(table: Table, policy: CheckPolicy, layout: Layout | None = None) -> list[Finding]:
    """``layout``: the table's layout when already classified without a sidecar (saves a pass)."""
    evidence, counted = record_level_evidence(table, policy, layout)
    if not is_record_level(evidence, counted):
        return []
    said = "; ".join(e.text for e in evidence)
    location = {"rows": len(table.rows), "evidence": [f"{e.kind}: {e.text}" for e in evidence],
                "columns": sorted({c for e in evidence for c in e.columns})}
    if policy.allow_record_level:
        return [Finding(CHECK, Severity.WARN,
                        f"This table looks like record-level data (one row per person), not an aggregate: {said}. "
                        "The permit's export policy allows record-level outputs; check every column is needed, "
                        "pseudonymised and covered by the permit.", location)]
    return [Finding(CHECK, Severity.BLOCK,
                    f"This table looks like record-level data (one row per person), not an aggregate: {said}. "
                    "The permit's export policy does not allow record-level outputs "
                    "(exportPolicy.recordLevelOutputs). Export aggregates instead: counts of at least "
                    f"{policy.min_cell_count}, summary statistics or model results.", location)]
