"""The Dataset reconciler's pure parts: the claim and Job builders, the status from a
termination message, and the status patch that overwrites anything written by hand."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from spe_api import Dataset, DatasetPhase
from spe_api.datasetvolume import LABEL_DATASET, LABEL_REVISION, LABEL_STATE, STATE_INGESTING, dataset_claim_name
from spe_api.reasons import DatasetReason
from spe_operator.datasets import builders, names as n
from spe_operator.datasets.report import Observed, build_status, status_patch, verdict

pytestmark = pytest.mark.dataset

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)


def dataset(**spec_overrides) -> Dataset:
    spec = {
        "source": {"claimName": "pacs-export", "path": "/exports/ct"},
        "anonymisation": {"options": ["clean-descriptors", "retain-longitudinal-modified-dates"],
                          "dateShiftMaxDays": 30, "dropScreenshots": False, "quarantineSecondaryCaptures": False},
        "pseudonymisation": {"keySecret": {"name": "pkey", "key": "blake"}, "site": "umcg"},
        "kAnonymity": {"threshold": 7, "quasiIdentifiers": ["PatientSex", "PatientAge"]},
        "storage": {"size": "2Gi", "storageClassName": "enc",
                    "encryptionKeySecret": {"name": "volkey", "key": "k"}},
        "signingKeySecret": {"name": "sign", "key": "ed25519.pem"},
    }
    spec.update(spec_overrides)
    return Dataset.from_manifest({"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Dataset",
                                  "metadata": {"name": "ct", "uid": "u-1", "generation": 3}, "spec": spec})


def test_claim_follows_the_datasetvolume_contract_and_passes_the_key_the_csi_way():
    claim = builders.build_claim(dataset(), 3, "enc", "spe-system")
    md = claim["metadata"]
    assert md["name"] == dataset_claim_name("ct", 3) == "dataset-ct-r3"
    assert md["namespace"] == "spe-system"
    assert md["labels"][LABEL_DATASET] == "ct" and md["labels"][LABEL_REVISION] == "3"
    assert md["labels"][LABEL_STATE] == STATE_INGESTING
    assert md["ownerReferences"][0]["uid"] == "u-1" and md["ownerReferences"][0]["kind"] == "Dataset"
    assert md["annotations"][n.ANNOTATION_KEY_SECRET] == "volkey"
    assert md["annotations"][n.ANNOTATION_KEY_NAMESPACE] == "spe-system"
    assert claim["spec"]["storageClassName"] == "enc"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_every_spec_field_reaches_spe_ingest():
    args = builders.ingest_arguments(dataset(), workers=3)
    joined = " ".join(args)
    assert args[:4] == ["spe-ingest", "run", "/source/exports/ct", "/dataset"]
    pairs = {(a, b) for a, b in zip(args, args[1:])}
    for pair in [("--site", "umcg"), ("--project", "ct"), ("--profile", "basic"),
                 ("--option", "clean-descriptors"), ("--option", "retain-longitudinal-modified-dates"),
                 ("--date-shift-max-days", "30"), ("--screenshots", "quarantine"),
                 ("--secondary-captures", "drop"), ("--k-threshold", "7"),
                 ("--quasi-identifier", "PatientSex"), ("--quasi-identifier", "PatientAge"),
                 ("--workers", "3"), ("--summary-file", "/dev/termination-log")]:
        assert pair in pairs, (pair, joined)
    assert "--signing-key" in args and "--shard-count" not in args
    shard = builders.ingest_arguments(dataset(), workers=1, shards=4)
    assert ("--shard-count", "4") in set(zip(shard, shard[1:])) and "--signing-key" not in shard


def test_options_are_the_ones_spe_ingest_accepts():
    from spe_api import AnonymisationOption
    from spe_ingest.rules import OPTIONS
    assert {o.value for o in AnonymisationOption} - n.UNSUPPORTED_OPTIONS <= set(OPTIONS)
    assert not n.UNSUPPORTED_OPTIONS & set(OPTIONS)


def test_ingest_job_mounts_only_source_target_and_the_two_keys():
    job = builders.build_ingest_job(dataset(), 3, role=n.ROLE_FINAL, image="img@sha256:" + "a" * 64,
                                    namespace="spe-system", tolerations=[{"operator": "Exists"}])
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert pod["restartPolicy"] == "Never" and pod["tolerations"] == [{"operator": "Exists"}]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["source"]["persistentVolumeClaim"] == {"claimName": "pacs-export", "readOnly": True}
    assert vols["dataset"]["persistentVolumeClaim"]["claimName"] == "dataset-ct-r3"
    assert vols["pseudonym-key"]["secret"]["secretName"] == "pkey"
    assert vols["pseudonym-key"]["secret"]["items"] == [{"key": "blake", "path": "key"}]
    assert vols["signing-key"]["secret"]["items"] == [{"key": "ed25519.pem", "path": "key"}]
    assert set(vols) == {"source", "dataset", "tmp", "pseudonym-key", "signing-key"}
    ingest, verify = pod["initContainers"]
    assert ingest["name"] == "ingest" and verify["command"] == ["spe-ingest", "verify", "/dataset"]
    assert ingest["securityContext"]["readOnlyRootFilesystem"] is True
    assert ingest["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    publish = pod["containers"][0]
    assert publish["command"] == ["spe-ingest", "pseudonyms", "/dataset"]
    assert [m["name"] for m in publish["volumeMounts"]] == ["dataset"] and publish["volumeMounts"][0]["readOnly"]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and rules[0]["onExitCodes"]["values"] == [2, 3]
    assert job["metadata"]["name"] == "dataset-ct-r3-ingest"
    assert job["metadata"]["labels"][LABEL_DATASET] == "ct"


def test_shards_job_is_indexed_and_has_no_signing_key():
    job = builders.build_ingest_job(dataset(), 3, role=n.ROLE_SHARDS, shards=2, image="img", namespace="ns")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pod = job["spec"]["template"]["spec"]
    assert "initContainers" not in pod and "signing-key" not in {v["name"] for v in pod["volumes"]}
    assert job["metadata"]["name"] == "dataset-ct-r3-shards"


def _job(name: str, outcome: str | None, succeeded: int = 0) -> dict:
    conds = [{"type": outcome, "status": "True", "lastTransitionTime": "2026-12-02T01:00:00Z"}] if outcome else []
    return {"metadata": {"name": name}, "spec": {}, "status": {"conditions": conds, "succeeded": succeeded,
                                                               "startTime": "2026-12-02T00:59:00Z"}}


def _pod(exit_code: int, message: str, created: str = "2026-12-02T00:59:00Z") -> dict:
    return {"metadata": {"name": "p", "creationTimestamp": created},
            "status": {"phase": "Succeeded" if exit_code == 0 else "Failed",
                       "initContainerStatuses": [{"name": "ingest", "state": {"terminated": {
                           "exitCode": exit_code, "message": message}}}]}}


ACCEPTED = {"status": "accepted", "exitCode": 0, "efficiencyPercent": 95.0,
            "counts": {"inputs": 20, "accepted": 19, "quarantined": 1, "dropped": 0, "duplicate": 0,
                       "rejected": 0, "patients": 10, "studies": 10, "series": 10, "instances": 19},
            "outcomes": {"accepted": {"-": 19}, "quarantined": {"secondary-capture": 1}},
            "k": {"k": 10, "threshold": 7, "quasiIdentifiers": ["sex"], "classesBelowThreshold": 0},
            "manifestDigest": "sha256:" + "b" * 64}


def test_a_completed_job_with_an_accepted_report_is_ready():
    ds = dataset()
    obs = Observed(revision=3, claim={"metadata": {"name": "dataset-ct-r3"}, "spec": {"volumeName": "pv-1"}},
                   final_job=_job("dataset-ct-r3-ingest", "Complete"), final_pods=[_pod(0, json.dumps(ACCEPTED))])
    v = verdict(ds, obs)
    assert v.phase == DatasetPhase.READY and v.claim_state == "ready"
    st = build_status(ds, obs, v, NOW)
    assert st.counts.patients == 10 and st.counts.accepted == 19 and st.counts.instances == 20
    assert st.k_anonymity == 10 and st.efficiency_percent == 95.0
    assert st.manifest_digest == ACCEPTED["manifestDigest"]
    assert st.claim_name == "dataset-ct-r3" and st.volume_name == "pv-1" and st.revision == 3


def test_k_refusal_fails_with_the_reason_and_never_ready():
    refused = {**ACCEPTED, "status": "refused", "exitCode": 3,
               "k": {"k": 1, "threshold": 7, "quasiIdentifiers": ["age", "sex"], "classesBelowThreshold": 4}}
    obs = Observed(revision=3, final_job=_job("j", "Failed"), final_pods=[_pod(3, json.dumps(refused))])
    v = verdict(dataset(), obs)
    assert v.phase == DatasetPhase.FAILED and v.reason == DatasetReason.K_REFUSED
    assert "k-anonymity 1 is below the threshold 7" in v.message and "age, sex" in v.message
    st = build_status(dataset(), obs, v, NOW)
    assert st.manifest_digest is None and st.claim_name is None


def test_a_crash_shows_the_log_tail_and_a_completed_job_without_report_is_not_ready():
    obs = Observed(revision=3, final_job=_job("j", "Failed"), final_pods=[_pod(1, "Traceback\nboom: disk full\n")])
    v = verdict(dataset(), obs)
    assert v.phase == DatasetPhase.FAILED and "boom: disk full" in v.message
    obs = Observed(revision=3, final_job=_job("j", "Complete"), final_pods=[_pod(0, "")])
    assert verdict(dataset(), obs).phase == DatasetPhase.FAILED


def test_running_and_sharded_progress():
    obs = Observed(revision=3, final_job=_job("j", None), files_processed=42)
    v = verdict(dataset(), obs)
    assert v.phase == DatasetPhase.INGESTING and "42 files" in v.message
    assert build_status(dataset(), obs, v, NOW).files_processed == 42
    obs = Observed(revision=3, shards=2, shard_job=_job("s", None, succeeded=1))
    assert "1 of 2 shards" in verdict(dataset(), obs).message


def test_status_patch_removes_what_was_written_by_hand():
    obs = Observed(revision=3, final_job=_job("j", None))
    desired = build_status(dataset(), obs, verdict(dataset(), obs), NOW)
    forged = {"phase": "Ready", "claimName": "someone-elses-claim", "volumeName": "pv-x",
              "counts": {"accepted": 5, "rejectedByReason": {"x": 1}}}
    patch = status_patch(desired, forged)["status"]
    assert patch["phase"] == "Ingesting"
    assert patch["claimName"] is None and patch["volumeName"] is None
    assert patch["counts"] is None
    current = json.loads(json.dumps(desired.model_dump(mode="json", by_alias=True, exclude_none=True)))
    assert status_patch(desired, current) is None
