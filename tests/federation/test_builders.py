"""Federation builders (no servers): which node gets which permit, what the ManifestWorks
carry, what crosses back up, and the lease."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from spe_api import DataPermit, DataPermitPhase
from spe_operator.federation import (CATALOGUE_CONFIGMAP, CHECKPOINT_CONFIGMAP, HEARTBEAT_CONFIGMAP, LABEL_MIRRORED,
                                     LABEL_TIER, dataset_label)
from spe_operator.federation.catalogue import (CATALOGUE_FIELDS, COUNT_FIELDS, central_catalogue, dataset_entry,
                                               export_configmap, parse_checkpoint, parse_entries)
from spe_operator.federation.lease import contact, effective_permit
from spe_operator.federation.works import (desired_works, feedback_values, node_from_managed_cluster,
                                           permit_targets, permit_work)

pytestmark = pytest.mark.federation

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def managed_cluster(name, tier=3, datasets=(), accepted=True):
    labels = {LABEL_TIER: str(tier), **{dataset_label(d): "held" for d in datasets}}
    return {"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
            "metadata": {"name": name, "labels": labels}, "spec": {"hubAcceptsClient": accepted}}


def permit(name="p1", datasets=("lung-ct", "brain-mr"), **spec):
    return {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "7", "generation": 2,
                         "labels": {"team": "onco"},
                         "annotations": {"spe.ehds.io/last-handled-configuration": "{}", "note": "kept"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"permitId": f"HDAB-{name}", "purpose": "Lung nodule research", "members": [{"subject": "rita"}],
                     "datasets": list(datasets), "notAfter": "2027-01-01T00:00:00Z", "tier": 3, **spec},
            "status": {"phase": "Active", "namespace": f"spe-{name}"}}


def tool(name="jupyter", phase="Approved", revoked=False):
    return {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Tool",
            "metadata": {"name": name, "uid": "t"},
            "spec": {"displayName": name, "image": "r/x@sha256:" + "a" * 64, "revoked": revoked},
            "status": {"phase": phase}}


def dataset(name="lung-ct", **status):
    return {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name},
            "spec": {"description": "Lung CT of 40 patients at UMCG, Dr. Jansen's cohort", "modalities": ["CT"],
                     "source": {"claimName": "raw", "claimNamespace": "ingest", "path": "/incoming/jansen"},
                     "pseudonymisation": {"keySecret": {"name": "k", "key": "key"}, "site": "umcg"}},
            "status": {"phase": "Ready", "kAnonymity": 7, "manifestDigest": "sha256:" + "b" * 64,
                       "counts": {"patients": 40, "studies": 52, "series": 300, "instances": 9000,
                                  "accepted": 8990, "rejected": 10, "quarantined": 0,
                                  "rejectedByReason": {"burned-in-annotation": 10}},
                       "claimName": "ds-lung-ct-1", "volumeName": "pv-123", "jobName": "ingest-lung-ct",
                       **status}}


def test_a_permit_goes_to_tier3_nodes_holding_its_datasets_with_only_their_datasets():
    nodes = [node_from_managed_cluster(mc) for mc in (
        managed_cluster("umcg", 3, ["lung-ct"]), managed_cluster("amc", 3, ["brain-mr", "other"]),
        managed_cluster("lumc", 2, ["lung-ct"]), managed_cluster("erasmus", 3, ["other"]))]
    assert permit_targets(permit(), nodes) == {"umcg": ["lung-ct"], "amc": ["brain-mr"]}


def test_the_mirrored_permit_keeps_the_spec_and_drops_central_state():
    work = permit_work(permit(), "umcg", ["lung-ct"])
    assert work["metadata"]["namespace"] == "umcg" and work["metadata"]["name"] == "spe-permit-p1"
    assert work["metadata"]["ownerReferences"][0]["uid"] == "uid-p1"
    (copy,) = work["spec"]["workload"]["manifests"]
    assert copy["spec"]["datasets"] == ["lung-ct"]
    assert copy["spec"]["permitId"] == "HDAB-p1" and copy["spec"]["members"] == [{"subject": "rita"}]
    assert "status" not in copy
    md = copy["metadata"]
    assert set(md) == {"name", "labels", "annotations"}
    assert md["labels"] == {"team": "onco", LABEL_MIRRORED: "true"}
    assert md["annotations"] == {"note": "kept"}
    (cfg,) = work["spec"]["manifestConfigs"]
    assert cfg["resourceIdentifier"] == {"group": "spe.ehds.io", "resource": "datapermits", "name": "p1"}
    assert work["spec"]["deleteOption"] == {"propagationPolicy": "Foreground"}


def test_revocation_travels_in_the_spec():
    work = permit_work(permit(revoked=True, revocationReason="breach"), "umcg", ["lung-ct"])
    spec = work["spec"]["workload"]["manifests"][0]["spec"]
    assert spec["revoked"] is True and spec["revocationReason"] == "breach"


def test_desired_works_per_node_and_tier():
    clusters = [managed_cluster("umcg", 3, ["lung-ct"]), managed_cluster("lumc", 2, ["lung-ct"]),
                managed_cluster("pending", 3, ["lung-ct"], accepted=False)]
    works = desired_works([permit()], clusters, [tool(), tool("old", revoked=True), tool("new", "Pending")],
                          "spe-federation", NOW, "spe-system")
    names = sorted((w["metadata"]["namespace"], w["metadata"]["name"]) for w in works)
    assert names == [("lumc", "spe-federation"), ("umcg", "spe-federation"), ("umcg", "spe-permit-p1")]
    by = {(w["metadata"]["namespace"], w["metadata"]["name"]): w for w in works}
    umcg = by[("umcg", "spe-federation")]["spec"]["workload"]["manifests"]
    lumc = by[("lumc", "spe-federation")]["spec"]["workload"]["manifests"]
    assert [m["metadata"]["name"] for m in umcg if m["kind"] == "Tool"] == ["jupyter"]
    assert not [m for m in lumc if m["kind"] == "Tool"]  # tier 2: discovery only
    hb = next(m for m in umcg if m["metadata"]["name"] == HEARTBEAT_CONFIGMAP)
    assert hb["data"] == {"sentAt": "2026-12-01T12:00:00Z"}
    configs = {c["resourceIdentifier"]["name"]: c for c in by[("umcg", "spe-federation")]["spec"]["manifestConfigs"]}
    assert configs[CATALOGUE_CONFIGMAP]["updateStrategy"] == {"type": "ReadOnly"}
    assert configs[CHECKPOINT_CONFIGMAP]["resourceIdentifier"]["namespace"] == "spe-system"
    assert configs[CHECKPOINT_CONFIGMAP]["feedbackRules"][0]["jsonPaths"] == [
        {"name": "checkpoint", "path": ".data.checkpoint\\.json"}]


def test_exactly_the_catalogue_fields_cross():
    entry = dataset_entry(dataset())
    assert tuple(entry) == CATALOGUE_FIELDS
    assert set(entry["counts"]) == set(COUNT_FIELDS)
    assert entry == {"name": "lung-ct", "phase": "Ready", "modalities": ["CT"], "kAnonymity": 7,
                     "manifestDigest": "sha256:" + "b" * 64,
                     "counts": {"patients": 40, "studies": 52, "series": 300, "instances": 9000,
                                "accepted": 8990, "rejected": 10, "quarantined": 0}}
    text = export_configmap([dataset()], "spe-federation")["data"]["datasets"]
    for secret in ("Jansen", "/incoming", "umcg", "raw", "ds-lung-ct-1", "pv-123", "burned-in", "keySecret"):
        assert secret not in text


def test_central_refuses_entries_with_anything_else():
    good = dataset_entry(dataset())
    smuggled = {**dataset_entry(dataset("brain-mr")), "patientIds": ["P-0001"]}
    bad_counts = {**good, "name": "x", "counts": {**good["counts"], "files": ["a.dcm"]}}
    entries, refused = parse_entries(json.dumps([good, smuggled, bad_counts]))
    assert entries == [good]
    assert len(refused) == 2 and refused[0].startswith("brain-mr:") and "patientIds" in refused[0]
    cm = central_catalogue("umcg", "spe-federation", entries, refused, None, NOW)
    assert "P-0001" not in json.dumps(cm) and "a.dcm" not in json.dumps(cm)
    assert json.loads(cm["data"]["datasets.json"]) == [good]


def test_checkpoint_feedback_is_kept_as_published():
    cp = {"seq": 12, "hash": "ab" * 32, "time": "2026-12-01T12:00:00Z", "signature": "c2ln", "keyId": "k1",
          "log": "operator.jsonl", "extra": "dropped"}
    kept = parse_checkpoint(json.dumps(cp))
    assert kept == {k: v for k, v in cp.items() if k != "extra"}
    assert parse_checkpoint("not json") is None and parse_checkpoint(json.dumps({"seq": "1"})) is None
    cm = central_catalogue("umcg", "spe-federation", [], [], kept, NOW)
    assert json.loads(cm["data"]["checkpoint.json"]) == kept


def test_feedback_values_are_read_by_resource():
    work = {"status": {"resourceStatus": {"manifests": [
        {"resourceMeta": {"resource": "configmaps", "namespace": "spe-federation", "name": CATALOGUE_CONFIGMAP},
         "statusFeedback": {"values": [{"name": "datasets", "fieldValue": {"type": "String", "string": "[]"}}]}},
        {"resourceMeta": {"resource": "datapermits", "namespace": "", "name": "p1"},
         "statusFeedback": {"values": [{"name": "phase", "fieldValue": {"type": "String", "string": "Active"}}]}},
    ]}}}
    values = feedback_values(work)
    assert values[("configmaps", "spe-federation", CATALOGUE_CONFIGMAP)] == {"datasets": "[]"}
    assert values[("datapermits", "", "p1")] == {"phase": "Active"}


def test_lease_suspends_mirrored_permits_only_and_fails_closed():
    hb = {"data": {"sentAt": "2026-12-01T12:00:00Z"}}
    fresh = contact(hb, NOW + timedelta(seconds=899), 900)
    stale = contact(hb, NOW + timedelta(seconds=901), 900)
    none = contact(None, NOW, 900)
    assert not fresh.lost and stale.lost and none.lost
    assert "no contact with central since 2026-12-01T12:00:00Z (lease 15m00s)" in stale.message
    p = DataPermit.from_manifest(permit())
    when = NOW
    assert effective_permit(p, True, fresh).phase_at(when) == DataPermitPhase.ACTIVE
    suspended = effective_permit(p, True, stale)
    assert suspended.phase_at(when) == DataPermitPhase.SUSPENDED
    assert "no contact with central" in suspended.spec.suspension_reason
    assert effective_permit(p, False, stale).phase_at(when) == DataPermitPhase.ACTIVE  # local permits: untouched
    revoked = DataPermit.from_manifest(permit(revoked=True, revocationReason="breach"))
    assert effective_permit(revoked, True, stale).phase_at(when) == DataPermitPhase.REVOKED
    # Node-local expiry needs no central: the window is in the mirrored spec.
    assert effective_permit(p, True, fresh).phase_at(datetime(2027, 1, 1, 0, 0, 1, tzinfo=timezone.utc)) == \
        DataPermitPhase.EXPIRED
