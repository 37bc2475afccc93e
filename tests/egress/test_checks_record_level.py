"""Record-level tables (one row per person) are blocked, with the evidence named, unless the
permit's export policy allows them; aggregate tables are not."""

from __future__ import annotations

import random

import pytest

from spe_egress.checks import CheckPolicy, FileInput, Severity, run_checks

from .corpus import csv

pytestmark = pytest.mark.egress
CHECK = "sdc.record-level"
rnd = random.Random(11)


def record_level(data: bytes, name: str = "t.csv", **policy):
    report = run_checks([FileInput(name, data)], CheckPolicy(**policy))
    return [f for f in report.files[0].findings if f.check == CHECK], report


RECORD_LEVEL = [
    ("id-column", "'patient_id' is named like a person identifier and has 40 distinct values in 40 rows",
     csv(["patient_id", "age", "grade"], [[f"P{i:03d}", rnd.randint(30, 80), rnd.randint(1, 3)] for i in range(40)])),
    ("id-column", "column 'pseudonym' is named like a person identifier",
     csv(["pseudonym", "dice"], [[f"PSN-{i:06x}", round(rnd.random(), 3)] for i in range(12)])),
    ("id-column", "holds 30 distinct codes in 30 rows (e.g. 'sub-001')",
     csv(["label", "arm"], [[f"sub-{i:03d}", rnd.choice("AB")] for i in range(1, 31)])),
    ("survival-pair", "time-to-event column 'os_months' with a 0/1 event column 'death' over 25 rows",
     csv(["os_months", "death", "stage"], [[round(rnd.uniform(1, 60), 1), rnd.randint(0, 1), rnd.choice("IV")]
                                           for _ in range(25)])),
    ("survival-pair", "time-to-event column 'futime' with a 0/1 event column 'fustat'",
     csv(["futime", "fustat"], [[rnd.randint(10, 900), rnd.choice(["0", "1"])] for _ in range(12)])),
    ("quasi-identifiers", "rows have a combination of (age, sex, postcode) shared by fewer than 10 rows",
     csv(["age", "sex", "postcode", "response"], [[rnd.randint(30, 80), rnd.choice("MF"), rnd.choice(["1011", "6525"]),
                                                   rnd.choice(["CR", "PR"])] for _ in range(30)])),
    ("per-row-dates", "column 'visit_date' has a full date on each row",
     csv(["visit_date", "modality"], [[f"2023-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", rnd.choice(["CT", "MR"])]
                                      for _ in range(20)])),
    ("few-repeats", "60 rows whose values hardly repeat (column 'glcm_entropy'",
     csv(["glcm_entropy", "shape_volume"], [[round(rnd.gauss(4, 1), 5), round(rnd.gauss(40, 9), 3)] for _ in range(60)])),
]


@pytest.mark.parametrize("kind,evidence,data", RECORD_LEVEL, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(RECORD_LEVEL)])
def test_record_level_tables_are_blocked_with_the_evidence_named(kind, evidence, data):
    found, report = record_level(data)
    assert [f.severity for f in found] == [Severity.BLOCK] and report.verdict == "block"
    assert evidence in found[0].message and "recordLevelOutputs" in found[0].message
    assert any(e.startswith(kind + ":") for e in found[0].location["evidence"])
    assert found[0].location["columns"]


def test_a_declaration_does_not_make_row_level_data_aggregate():
    rows = [[f"P{i:03d}", rnd.randint(0, 3)] for i in range(20)]
    found, _ = record_level(b"# sdc: kind=none\n" + csv(["patient_id", "lesions"], rows))
    assert [f.severity for f in found] == [Severity.BLOCK]


def test_per_row_small_counts_do_not_hide_per_row_dates():
    rows = [[f"2022-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", rnd.randint(0, 5)] for _ in range(30)]
    found, _ = record_level(csv(["scan_date", "lesion_count"], rows))
    assert [f.severity for f in found] == [Severity.BLOCK]
    assert any(e.startswith("per-row-dates: column 'scan_date'") for e in found[0].location["evidence"])


def test_permit_that_allows_record_level_outputs_gets_a_warning_instead():
    found, report = record_level(RECORD_LEVEL[0][2], allow_record_level=True)
    assert [f.severity for f in found] == [Severity.WARN] and report.verdict == "review"
    assert "allows record-level outputs" in found[0].message
    assert report.to_dict()["policy"]["allow_record_level"] is True


AGGREGATE = [
    ("counts above the threshold", csv(["site", "sex", "n"], [["A", "F", 41], ["A", "M", 38], ["B", "F", 52],
                                                               ["B", "M", 47]])),
    ("daily counts", csv(["date", "admissions"], [[f"2024-01-{d:02d}", 20 + d] for d in range(1, 29)])),
    ("training log", csv(["epoch", "loss", "auc"], [[i, round(1 / (i + 1), 5), round(0.5 + i / 400, 4)]
                                                    for i in range(120)])),
    ("ROC curve", csv(["threshold", "fpr", "tpr"], [[round(1 - i / 100, 2), i / 100, round((i / 100) ** .5, 4)]
                                                    for i in range(101)])),
    ("results per feature", csv(["feature", "coef", "p"], [[f"f_{i:03d}", round(rnd.gauss(0, 1), 4),
                                                          round(rnd.random(), 4)] for i in range(100)])),
    ("life table", csv(["time", "n_risk", "n_event", "surv"], [[t, 600 - 20 * t, 10 + t % 3, round(1 - t / 20, 3)]
                                                               for t in range(12)])),
    ("per-site codes with counts", csv(["site_id", "patients"], [[f"S{i:02d}", 30 + i] for i in range(25)])),
    ("summary by age band and sex", csv(["age_band", "sex", "mean_bmi", "n"],
                                        [[b, s, 26.1, 40] for b in ("<50", "50-69", "70+") for s in "MF"])),
]


@pytest.mark.parametrize("name,data", AGGREGATE, ids=[n for n, _ in AGGREGATE])
def test_aggregate_tables_are_not_record_level(name, data):
    found, report = record_level(data)
    assert found == []
    assert report.verdict != "block", [f.message for f in report.files[0].findings]


def test_permit_field_is_off_by_default_and_reaches_the_checks():
    from spe_api import DataPermit
    from spe_egress.kube_store import permit_from_manifest
    import yaml
    from pathlib import Path
    body = yaml.safe_load((Path(__file__).parents[2] / "examples" / "datapermit.yaml").read_text())
    assert DataPermit.from_manifest(body).spec.export_policy.record_level_outputs.allowed is False
    assert permit_from_manifest(body).policy.thresholds.allow_record_level is False
    body["spec"]["exportPolicy"]["recordLevelOutputs"] = {"allowed": True, "basis": "Permit clause 7.3"}
    assert permit_from_manifest(body).policy.thresholds.allow_record_level is True


def test_permit_schema_carries_the_rules():
    import json
    import yaml
    from spe_api.crdgen import rendered_crds
    text = json.dumps([yaml.safe_load(t) for t in rendered_crds().values()])
    assert "recordLevelOutputs" in text
    assert "spec.exportPolicy.recordLevelOutputs.basis is required when allowed is true" in text
    assert "spec.exportPolicy.reviewersRequired must be at least 2 when recordLevelOutputs.allowed is true" in text
