"""ACRO rules on CSV/TSV tables: minimum cell count, zeros, N-K dominance, p-ratio; table-kind
detection, declarations and the false positives to avoid. Each case names the exact cells."""

from __future__ import annotations

import json

import pytest

from spe_egress.checks import CheckPolicy, FileInput, Severity, classify, parse_table, run_checks

pytestmark = pytest.mark.egress

POLICY = CheckPolicy()  # threshold 10, N-K 2/0.9, p 0.1, zeros disclosive


def sdc_findings(name: str, text: str, policy: CheckPolicy = POLICY, extra: list[FileInput] = ()):
    report = run_checks([FileInput(name, text.encode()), *extra], policy)
    return report, [(f.check, f.severity, f.location and f.location.get("row"), f.location and f.location.get("column"))
                    for f in report.files[0].findings if f.check.startswith("sdc.") and f.check not in ("sdc.table-kind", "sdc.contributor-detail")]


def contributors(group_values: dict[str, list[float]]) -> str:
    lines = ["region,contributor,value"]
    for region, values in group_values.items():
        lines += [f"{region},h{i},{v}" for i, v in enumerate(values)]
    return "\n".join(lines) + "\n"


B, W = Severity.BLOCK, Severity.WARN
TABLE_CASES = [
    # (id, file name, text, policy, expected [(check, severity, row, column)])
    ("crosstab-safe", "t.csv", "ward,male,female\nA,12,30\nB,25,41\n", POLICY, []),
    ("crosstab-small-cell", "t.csv", "ward,male,female\nA,12,3\nB,25,41\n", POLICY,
     [("sdc.threshold", B, 0, "female")]),
    ("crosstab-total-column-checked", "t.csv", "ward,male,female,total\nA,12,30,42\nB,25,41,66\nAll,37,71,8\n", POLICY,
     [("sdc.threshold", B, 2, "total")]),
    ("crosstab-zero-disclosive", "t.csv", "ward,male,female\nA,12,0\nB,25,41\n", POLICY,
     [("sdc.zero", W, 0, "female")]),
    ("crosstab-zero-not-disclosive", "t.csv", "ward,male,female\nA,12,0\nB,25,41\n",
     CheckPolicy(zeros_disclosive=False), []),
    ("threshold-from-policy", "t.csv", "ward,male,female\nA,12,7\nB,25,41\n", CheckPolicy(min_cell_count=5), []),
    ("threshold-boundary-equal-is-safe", "t.csv", "ward,n\nA,10\nB,11\n", POLICY, []),
    ("tsv-crosstab", "t.tsv", "ward\tmale\tfemale\nA\t12\t1\nB\t25\t41\n", POLICY, [("sdc.threshold", B, 0, "female")]),
    ("semicolon-crosstab", "t.csv", "ward;male;female\nA;12;2\nB;25;41\n", POLICY, [("sdc.threshold", B, 0, "female")]),
    ("quoted-labels", "t.csv", 'diagnosis,n\n"lung, left",14\n"lung, right",4\n', POLICY, [("sdc.threshold", B, 1, "n")]),
    ("named-count-column-only", "t.csv", "site,year,n\nA,2023,12\nB,2024,4\n", POLICY, [("sdc.threshold", B, 1, "n")]),
    ("named-count-column-n-patients", "t.csv", "site,mean_age,n_patients\nA,61.5,40\nB,58.2,6\n", POLICY,
     [("sdc.threshold", B, 1, "n_patients")]),
    ("suppressed-markers-ignored", "t.csv", "ward,male,female\nA,12,<10\nB,*,41\n", POLICY, []),
    ("negative-count", "t.csv", "site,n\nA,12\nB,-3\n", POLICY, [("sdc.negative", W, 1, "n")]),
    # false-positive guards: not a count table
    ("guard-epochs-and-auc", "t.csv", "model,epoch,auc\nresnet,3,0.91\nvit,5,0.93\n", POLICY, []),
    ("guard-measure-named-integers", "t.csv", "group,age,score\nA,3,7\nB,4,2\n", POLICY, []),
    ("guard-decimals", "t.csv", "group,mean,sd\nA,3.2,1.1\nB,4.5,0.7\n", POLICY, []),
    ("guard-decimal-comma", "t.csv", "group;mean;sd\nA;3,2;1,1\nB;4,5;0,7\n", POLICY, []),
    ("guard-years-in-label-table", "t.csv", "cohort,from_year,to_year\nA,2019,2024\nB,2020,2024\n", POLICY, []),
    ("guard-numeric-only-no-labels", "t.csv", "x,y\n1,2\n3,4\n", POLICY, []),
    # declarations
    ("directive-frequency-counts", "t.csv", "# sdc: kind=frequency; counts=cases\narm,week,cases\nA,1,40\nB,2,3\n",
     POLICY, [("sdc.threshold", B, 1, "cases")]),
    ("directive-frequency-overrides-measure-names", "t.csv", "# sdc: kind=frequency\narm,week_1,week_2\nA,40,2\n",
     POLICY, [("sdc.threshold", B, 0, "week_2")]),
    # magnitude tables with contributor detail (one row per contributor)
    ("magnitude-safe", "m.csv", contributors({"north": [10.0] * 12}), POLICY, []),
    ("magnitude-dominated", "m.csv", contributors({"north": [1000.0] + [1.0] * 11}), POLICY,
     [("sdc.dominance", B, 0, "value"), ("sdc.p-ratio", B, 0, "value")]),
    ("magnitude-few-contributors", "m.csv", contributors({"north": [10.0] * 12, "south": [5.0, 6.0, 7.0]}), POLICY,
     [("sdc.threshold", B, 14, "value")]),  # located at the cell's largest contributor
    # magnitude tables with total and largest contributions
    ("summary-dominance", "s.csv", "region,total,top1,top2,n_contributors\nN,1000,900,60,30\nS,1000,200,150,40\n",
     POLICY, [("sdc.dominance", B, 0, "total"), ("sdc.p-ratio", B, 0, "total")]),
    ("summary-p-ratio-only", "s.csv", "region,total,top1,top2\nN,100,60,35\n", CheckPolicy(dominance_k=0.99),
     [("sdc.p-ratio", B, 0, "total")]),
    ("summary-few-contributors", "s.csv", "region,total,top1,top2,n_contributors\nN,1000,100,90,4\n", POLICY,
     [("sdc.threshold", B, 0, "total")]),
]


@pytest.mark.parametrize("name,text,policy,expected", [c[1:] for c in TABLE_CASES], ids=[c[0] for c in TABLE_CASES])
def test_sdc_rules(name, text, policy, expected):
    _, got = sdc_findings(name, text, policy)
    assert got == expected


def test_verdicts_follow_worst_cell():
    assert sdc_findings("t.csv", "ward,male,female\nA,12,30\n")[0].verdict == "pass"
    assert sdc_findings("t.csv", "ward,male,female\nA,12,0\n")[0].verdict == "review"
    assert sdc_findings("t.csv", "ward,male,female\nA,12,3\n")[0].verdict == "block"


def test_location_names_row_column_index_and_source_line():
    text = "# produced by analysis.ipynb\n\nward,male,female\nA,12,30\n\nB,25,2\n"
    report, _ = sdc_findings("t.csv", text)
    (f,) = [f for f in report.files[0].findings if f.check == "sdc.threshold"]
    assert f.location == {"row": 1, "column": "female", "col_index": 2, "line": 6, "value": 2}
    assert "'B'" in f.message and "below the minimum of 10" in f.message


def test_sidecar_declares_table_kind():
    table = "arm,week_1,week_2\nA,40,2\n"
    sidecar = FileInput("t.csv.sdc.json", json.dumps({"kind": "frequency"}).encode())
    _, got = sdc_findings("t.csv", table, extra=[sidecar])
    assert got == [("sdc.threshold", B, 0, "week_2")]
    _, without = sdc_findings("t.csv", table)
    assert without == []


def test_declared_not_statistical_is_a_warning_for_the_reviewer():
    report, got = sdc_findings("t.csv", "# sdc: kind=none\nward,male,female\nA,1,2\n")
    assert got == []
    (kind,) = [f for f in report.files[0].findings if f.check == "sdc.table-kind"]
    assert kind.severity is Severity.WARN


def test_undetected_table_says_how_to_declare():
    report, _ = sdc_findings("t.csv", "group,mean,sd\nA,3.2,1.1\n")
    (kind,) = [f for f in report.files[0].findings if f.check == "sdc.table-kind"]
    assert kind.severity is Severity.INFO and "# sdc: kind=frequency" in kind.message


def test_magnitude_finding_lists_all_rows_of_the_cell():
    report, _ = sdc_findings("m.csv", contributors({"north": [10.0] * 12, "south": [5.0, 6.0, 7.0]}))
    (f,) = [f for f in report.files[0].findings if f.check == "sdc.threshold"]
    assert f.location["rows"] == [12, 13, 14] and f.location["group"] == {"region": "south"}


def test_classify_exposed_for_the_reviewer_page():
    table = parse_table("ward,male,female\nA,12,3\n", "csv")
    layout = classify(table)
    assert layout.kind == "frequency" and layout.count_columns == [1, 2] and layout.label_columns == [0]


def test_many_small_cells_are_capped_with_a_summary():
    rows = "\n".join(f"r{i},{i % 9 + 1}" for i in range(200))
    report, _ = sdc_findings("t.csv", "ward,n\n" + rows + "\n", CheckPolicy(max_findings_per_check=20))
    small = [f for f in report.files[0].findings if f.check == "sdc.threshold"]
    assert len(small) == 21 and small[-1].location == {"omitted": 180} and small[-1].severity is B


def test_magnitude_table_with_contributor_detail_is_itself_flagged():
    report, _ = sdc_findings("m.csv", contributors({"north": [10.0] * 12}))
    (f,) = [f for f in report.files[0].findings if f.check == "sdc.contributor-detail"]
    assert f.severity is Severity.WARN and f.location == {"columns": ["contributor", "value"]}
    assert report.verdict == "review"


def test_declared_count_columns_that_do_not_exist_are_a_warning():
    report, got = sdc_findings("t.csv", "# sdc: kind=frequency; counts=cases\nward,mean_age\nA,3\n")
    (kind,) = [f for f in report.files[0].findings if f.check == "sdc.table-kind"]
    assert got == [] and kind.severity is Severity.WARN


def test_declaration_cannot_hide_detected_count_columns():
    _, got = sdc_findings("t.csv", "# sdc: kind=frequency; counts=ward\nward,n\nA,3\n")
    assert got == [("sdc.threshold", B, 0, "n")]
