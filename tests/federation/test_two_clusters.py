"""Federation end to end on two real control planes joined by Open Cluster Management.

One scenario in steps (the module's tests run in order and share the clusters): the node joins;
a permit issued at central arrives at the node and runs a workspace there; the node's dataset
metadata (and nothing else) comes up to central's catalogue, with its audit checkpoint, which
an auditor verifies against the node's own log; cut off from central longer than its lease, the
node suspends the mirrored permit and resumes it when contact returns; a revocation at central
stops the node's workspace; deleting the permit at central removes it from the node.

The node's Dataset status is set by the test: the Dataset reconciler (ingest pipeline) is
another issue's work; the catalogue reads the status fields as ``spe_api.dataset`` defines them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from spe_dev.ocm import AGENT, HUB_COMPONENTS, Federation
from spe_operator.federation import LABEL_MIRRORED, LABEL_TIER, dataset_label
from spe_operator.federation.catalogue import CATALOGUE_FIELDS, COUNT_FIELDS
from tests.fixtures.storage import LoopbackProvisioner
from tests.fixtures.waiting import wait_for
from tests.workspace import factories as f
from tests.workspace.helpers import Kube

from .conftest import HELD, LEASE, NODE, SYNC

pytestmark = pytest.mark.federation

PERMIT = "fed-permit"
TOOL = "jupyterlab"
DATASET = HELD[0]
API = "/apis/spe.ehds.io/v1alpha1"
MC = "/apis/cluster.open-cluster-management.io/v1/managedclusters"
WORKS = "/apis/work.open-cluster-management.io/v1/namespaces"
NS = f"spe-{PERMIT}"
WS = f"{API}/namespaces/{NS}/workspaces/analysis"
FIGURES: dict[str, float] = {}


def _cond(obj, ctype):
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == ctype), None)


def _phase(obj):
    return ((obj or {}).get("status") or {}).get("phase")


@pytest.fixture(scope="module")
def node_storage(federation):
    provisioner = LoopbackProvisioner(federation.node.kubeconfig).start()
    try:
        yield provisioner
    finally:
        provisioner.stop()


def test_node_joined_central_with_its_tier_and_datasets(federation):
    mc = federation.central.api().get(f"{MC}/{NODE}")
    labels = mc["metadata"]["labels"]
    assert labels[LABEL_TIER] == "3" and labels[dataset_label(DATASET)] == "held"
    assert _cond(mc, "ManagedClusterJoined")["status"] == "True"
    assert _cond(mc, "ManagedClusterConditionAvailable")["status"] == "True"
    # The agent's credentials name central's API server: the node dials central, never the reverse.
    hub_kc = (federation.node.home / "ocm" / "hub-kubeconfig" / "kubeconfig").read_text()
    assert federation.central.server in hub_kc and federation.node.server not in hub_kc
    FIGURES["join_s"] = federation.join_seconds


def test_permit_down_and_a_workspace_on_the_node(federation, operators, node_storage):
    central, node = federation.central.api(), federation.node.api()
    # The node's dataset (its status as the ingest pipeline would leave it; see the module doc).
    ds = f.dataset(DATASET)
    ds["spec"].update(description="Lung CT of the Jansen cohort, UMCG", modalities=["CT", "SEG"])
    Kube(node).create(ds)
    node.call("PATCH", f"{API}/datasets/{DATASET}/status", {"status": {
        "phase": "Ready", "kAnonymity": 6, "manifestDigest": "sha256:" + "c" * 64, "claimName": "ds-lung-ct-r1",
        "jobName": "ingest-lung-ct-1",
        "counts": {"patients": 41, "studies": 55, "series": 310, "instances": 9100, "accepted": 9080,
                   "rejected": 15, "quarantined": 5, "rejectedByReason": {"burned-in-text": 15}}}},
        content_type="application/merge-patch+json")
    Kube(central).create(f.tool(TOOL, gpu=False))  # retried while the operator's webhook starts
    wait_for("the Tool Approved at central", lambda: _phase(central.get_or_none(f"{API}/tools/{TOOL}")) == "Approved")
    t0 = time.monotonic()
    Kube(central).create(f.permit(PERMIT, datasets=[DATASET], gpus=[]))
    mirrored = wait_for("the permit Active on the node", lambda: (
        (p := node.get_or_none(f"{API}/datapermits/{PERMIT}")) and _phase(p) == "Active" and p), timeout=90)
    FIGURES["permit_down_s"] = time.monotonic() - t0
    assert mirrored["spec"]["datasets"] == [DATASET]  # only what this node holds
    assert mirrored["metadata"]["labels"][LABEL_MIRRORED] == "true"
    tool = wait_for("the Tool on the node", lambda: node.get_or_none(f"{API}/tools/{TOOL}"))
    assert tool["metadata"]["labels"][LABEL_MIRRORED] == "true"
    # On the node, the same operator reconciles it as a local permit: namespace and workspaces.
    wait_for("the permit's namespace on the node", lambda: node.get_or_none(f"/api/v1/namespaces/{NS}"))
    t1 = time.monotonic()
    ws = f.workspace("analysis", NS, PERMIT, tool_name=TOOL, running=True, storage_class="spe-encrypted")
    wait_for("creating the workspace (webhook ready)", lambda: _create(node, f"{API}/namespaces/{NS}/workspaces", ws),
             timeout=30)
    wait_for("the workspace Running on the node", lambda: _phase(node.get_or_none(WS)) == "Running", timeout=120)
    FIGURES["workspace_running_s"] = time.monotonic() - t1
    # The permit's phase on the node comes back through status feedback.
    wait_for("the node's permit phase fed back to central", lambda: _feedback(
        central.get_or_none(f"{WORKS}/{NODE}/manifestworks/spe-permit-{PERMIT}"), "phase") == "Active")
    # Central does not run it: no workspace can start there for a dataset it does not hold.
    assert central.get_or_none(f"{API}/datasets/{DATASET}") is None


def _create(api, path, body):
    from spe_dev.api import HttpError  # noqa: PLC0415

    try:
        api.create(path, body)
        return True
    except HttpError as err:
        if err.status == 500 and "failed calling webhook" in err.body:
            return False
        raise


def _feedback(work, name):
    for m in (((work or {}).get("status") or {}).get("resourceStatus") or {}).get("manifests") or []:
        for v in (m.get("statusFeedback") or {}).get("values") or []:
            if v["name"] == name:
                return v["fieldValue"].get("string")
    return None


def _catalogue(federation):
    return federation.central.api().get_or_none("/api/v1/namespaces/spe-federation/configmaps/spe-catalogue-node")


def test_metadata_up_exactly_the_catalogue_fields(federation, operators):
    cm = wait_for("the node's catalogue at central", lambda: (
        (c := _catalogue(federation)) and json.loads(c["data"]["datasets.json"]) and c), timeout=60)
    (entry,) = json.loads(cm["data"]["datasets.json"])
    assert set(entry) == set(CATALOGUE_FIELDS)
    assert entry == {"name": DATASET, "phase": "Ready", "modalities": ["CT", "SEG"], "kAnonymity": 6,
                     "manifestDigest": "sha256:" + "c" * 64,
                     "counts": {"patients": 41, "studies": 55, "series": 310, "instances": 9100, "accepted": 9080,
                                "rejected": 15, "quarantined": 5}}
    assert set(entry["counts"]) == set(COUNT_FIELDS)
    assert set(cm["data"]) <= {"node", "datasets.json", "observedAt", "checkpoint.json"}
    # Nothing else crossed: not the description, the claim, the job, the reasons, the source.
    text = json.dumps(cm)
    for leaked in ("Jansen", "ds-lung-ct-r1", "ingest-lung-ct-1", "burned-in-text", "src-lung-ct", "pseudonym-key"):
        assert leaked not in text
    # What central holds of the node in total: the work's feedback carries the same two values.
    work = federation.central.api().get(f"{WORKS}/{NODE}/manifestworks/spe-federation")
    names = {v["name"] for m in work["status"]["resourceStatus"]["manifests"]
             for v in (m.get("statusFeedback") or {}).get("values") or []}
    assert names == {"datasets", "checkpoint"}


def test_central_receives_signed_checkpoints_an_auditor_verifies(federation, operators, tmp_path):
    cm = wait_for("the node's audit checkpoint at central", lambda: (
        (c := _catalogue(federation)) and "checkpoint.json" in c["data"] and c), timeout=60)
    cp = json.loads(cm["data"]["checkpoint.json"])
    assert set(cp) <= {"seq", "hash", "time", "signature", "keyId", "log"} and cp["signature"]
    cp_file = tmp_path / "central-copy.json"
    cp_file.write_text(cm["data"]["checkpoint.json"])
    log = operators["node_audit_log"]
    ok = subprocess.run([sys.executable, "-m", "spe_audit.cli", "verify", str(log), "--public-key",
                         str(operators["audit_public_key"]), "--checkpoint-file", str(cp_file)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The node's trail stays on the node: central has the checkpoint, never the records.
    assert "workspace.started" not in json.dumps(cm)
    # A node log cut before what central saw fails the check.
    lines = log.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[: max(1, cp["seq"] - 1)]))
    bad = subprocess.run([sys.executable, "-m", "spe_audit.cli", "verify", str(cut), "--public-key",
                          str(operators["audit_public_key"]), "--checkpoint-file", str(cp_file)],
                         capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout + bad.stderr


def test_lease_expiry_suspends_the_mirrored_permit_and_contact_resumes_it(federation, operators):
    node = federation.node.api()
    node_settings = federation.node.settings
    t0 = time.monotonic()
    assert Federation.stop(node_settings, (AGENT,)) == [AGENT]  # the node is cut off from central
    permit = wait_for("the mirrored permit Suspended on the node", lambda: (
        (p := node.get_or_none(f"{API}/datapermits/{PERMIT}")) and _phase(p) == "Suspended" and p),
        timeout=LEASE + 60)
    FIGURES["lease_suspend_s"] = time.monotonic() - t0
    assert FIGURES["lease_suspend_s"] >= LEASE - 2 * SYNC - 1  # not before the lease ran out
    active = _cond(permit, "Active") or _cond(permit, "PermitActive") or {}
    assert "no contact with central" in json.dumps(permit["status"]), permit["status"]
    wait_for("the node's workspace stopped", lambda: not (node.get_or_none(WS) or {}).get("spec", {}).get("running"))
    # Contact returns: the agent is started again (it keeps its certificate).
    t1 = time.monotonic()
    rejoin = federation.spe_dev("federation", "join", "--hub", "central", "--cluster", NODE, "--tier", "3",
                                "--dataset", DATASET, timeout=300)
    assert rejoin.returncode == 0, rejoin.stdout + rejoin.stderr
    wait_for("the mirrored permit Active again", lambda: _phase(node.get_or_none(f"{API}/datapermits/{PERMIT}"))
             == "Active", timeout=90)
    FIGURES["lease_resume_s"] = time.monotonic() - t1
    del active


def test_revocation_at_central_stops_the_node_workspace(federation, operators):
    central, node = federation.central.api(), federation.node.api()
    node.call("PATCH", WS, {"spec": {"running": True}}, content_type="application/merge-patch+json")
    wait_for("the workspace Running again", lambda: _phase(node.get_or_none(WS)) == "Running", timeout=120)
    t0 = time.monotonic()
    central.call("PATCH", f"{API}/datapermits/{PERMIT}", {"spec": {
        "revoked": True, "revocationReason": "Data access body withdrew the permit (test)."}},
        content_type="application/merge-patch+json")
    wait_for("the node's workspace stopped", lambda: (
        (w := node.get_or_none(WS)) and not w["spec"]["running"] and _phase(w) == "Stopped"), timeout=90)
    FIGURES["revocation_s"] = time.monotonic() - t0
    assert _phase(node.get_or_none(f"{API}/datapermits/{PERMIT}")) == "Revoked"


def test_deleting_the_permit_at_central_removes_it_from_the_node(federation, operators):
    central, node = federation.central.api(), federation.node.api()
    central.call("DELETE", f"{API}/datapermits/{PERMIT}")
    wait_for("the permit gone from the node", lambda: node.get_or_none(f"{API}/datapermits/{PERMIT}") is None,
             timeout=120)


def test_node_local_expiry_needs_no_central(federation, operators):
    """A mirrored permit expires on the node at its notAfter by the node's own clock, with the
    node cut off from central (the lease suspends it first; expiry is final)."""
    central, node = federation.central.api(), federation.node.api()
    name = "fed-expiring"
    not_after = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=LEASE + 25)
    Kube(central).create(f.permit(name, datasets=[DATASET], gpus=[], not_after=not_after))
    wait_for("the expiring permit Active on the node", lambda: _phase(
        node.get_or_none(f"{API}/datapermits/{name}")) == "Active", timeout=90)
    _record_memory(federation)  # every OCM process up, after a whole scenario
    Federation.stop(federation.node.settings, (AGENT,))
    permit = wait_for("the permit Expired on the node", lambda: (
        (p := node.get_or_none(f"{API}/datapermits/{name}")) and _phase(p) == "Expired" and p),
        timeout=LEASE + 120)
    assert datetime.now(timezone.utc) >= not_after
    assert _cond(permit, "WithinValidity")["status"] == "False"


def _record_memory(federation):
    mem = {**Federation.memory(federation.central.settings), **Federation.memory(federation.node.settings)}
    assert set(mem) == {*HUB_COMPONENTS, AGENT}
    FIGURES.update({f"rss_mib_{k}": round(v, 1) for k, v in mem.items()})


def test_figures(federation, operators):
    assert {f"rss_mib_{k}" for k in (*HUB_COMPONENTS, AGENT)} <= set(FIGURES)
    print("\nfederation figures:", json.dumps(FIGURES, indent=1, sort_keys=True))
    assert FIGURES.get("permit_down_s") is not None
