"""The gateway on the real local control plane: OutputReviews and their companion record are
written to the API server, DataPermit and Workspace are read from it (CRDs from crds/)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from spe_egress.kube_store import KubeStore
from spe_kube import KubeClient, KubeConfig

from spe_dev.servers import repo_root

from .conftest import RESEARCHER, start_gateway
from .helpers import SAFE_CSV, SMALL_CELLS_CSV, approve_all, run_cli, zip_members

pytestmark = pytest.mark.egress


@pytest.fixture(scope="session")
def egress_crds(spe_crds):
    """CRDs, and the gateway's identity and roles exactly as manifests/base defines them."""
    cluster, root = spe_crds, repo_root()
    for part in ("namespace.yaml", "serviceaccounts.yaml", "permit-roles.yaml", "operator-rbac.yaml",
                 "egress-rbac.yaml"):
        cluster.kubectl("apply", "-f", str(root / "manifests" / "base" / part), check=True)
    return cluster


def gateway_kubeconfig(cluster) -> KubeConfig:
    """Credentials of the gateway's own service account (spe-system/spe-egress)."""
    token = cluster.kubectl("create", "token", "spe-egress", "-n", "spe-system", "--duration=1h",
                            check=True).stdout.strip()
    return KubeConfig(server=cluster.server, ca_file=cluster.ca_file, token=token)


def _apply(cluster, obj: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj), check=True)


@pytest.fixture
def permit_and_workspace(egress_crds, namespace):
    cluster = egress_crds
    permit = f"eg-{namespace[-6:]}"
    dataset = f"eg-ds-{namespace[-6:]}"
    _apply(cluster, {  # a Dataset object only (no operator here: nothing is ingested)
        "apiVersion": "spe.ehds.io/v1alpha1", "kind": "Dataset", "metadata": {"name": dataset},
        "spec": {"source": {"claimName": "pacs-export", "path": "/exports/x"},
                 "pseudonymisation": {"keySecret": {"name": "pseudonym-key"}, "site": "test", "project": permit},
                 "storage": {"size": "1Gi"}, "signingKeySecret": {"name": "dataset-signing-key"}}})
    _apply(cluster, {
        "apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": permit},
        "spec": {"permitId": f"TEST-EGRESS-{namespace[-6:]}", "purpose": "Testing the egress gateway on a real API server.",
                 "members": [{"subject": RESEARCHER, "role": "researcher"}], "datasets": [dataset],
                 "notAfter": (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "exportPolicy": {"reviewersRequired": 2, "allowedFileTypes": ["csv", "txt"],
                                  "maxFileSize": "1Mi", "retentionDays": 30,
                                  "reviewers": ["rev-ada", "rev-bob"]}}})
    cluster.kubectl("patch", "datapermit", permit, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"phase": "Active"}}), check=True)
    tool = yaml.safe_load((repo_root() / "examples" / "tool-jupyterlab.yaml").read_text())
    tool["metadata"] = {"name": f"eg-tool-{namespace[-6:]}"}
    _apply(cluster, tool)
    ns = f"spe-{permit}"  # the permit's namespace (made here: no operator runs in these tests)
    _apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
                                                                          "labels": {"spe.ehds.io/test": "true"}}})
    _apply(cluster, {  # what the operator grants the gateway in each permit's namespace
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "spe-permit-egress", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "spe-permit-egress"},
        "subjects": [{"kind": "ServiceAccount", "name": "spe-egress", "namespace": "spe-system"}]})
    _apply(cluster, {
        "apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "analysis", "namespace": ns},
        "spec": {"permit": permit, "members": [RESEARCHER], "tool": tool["metadata"]["name"], "running": False}})
    try:
        yield permit, ns
    finally:
        # no gateway runs after the test to release its finalizer: release it here
        for name in cluster.kubectl("get", "outputreviews", "-n", ns, "-o", "name").stdout.split():
            cluster.kubectl("patch", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
        cluster.kubectl("delete", "datapermit", permit, "--wait=false")
        cluster.kubectl("delete", "dataset", dataset, "--wait=false")
        cluster.kubectl("delete", "tool", tool["metadata"]["name"], "--wait=false")


@pytest.fixture
def kube_gateway(hub, tmp_path, egress_crds):
    store = KubeStore(KubeClient(gateway_kubeconfig(egress_crds), field_manager="spe-egress"),
                      tmp_path / "data" / "state")
    gw = start_gateway(tmp_path, store, hub_api_url=hub.api_url)
    try:
        yield gw
    finally:
        gw.server.stop()


def _get(cluster, kind: str, name: str, ns: str) -> dict:
    return json.loads(cluster.kubectl("get", kind, name, "-n", ns, "-o", "json", check=True).stdout)


def test_export_on_the_real_control_plane(kube_gateway, permit_and_workspace, hub, egress_crds, tmp_path):
    gw, cluster = kube_gateway, egress_crds
    permit, ns = permit_and_workspace
    token = hub.server_token(RESEARCHER, ns, "analysis")
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    code, out, err = run_cli(gw, token, "request", str(f), "--justification", "Counts for the report.",
                             workspace="analysis", namespace=ns)
    assert code == 0, err
    rid = out.split()[2].rstrip(":")
    gw.wait_phase(rid, {"AwaitingReview"})

    review = _get(cluster, "outputreview", rid, ns)
    assert review["spec"]["requester"] == RESEARCHER and review["spec"]["workspace"] == "analysis"
    assert review["spec"]["files"][0]["sha256"] == gw.call(gw.store.find_review(rid))["spec"]["files"][0]["sha256"]
    assert review["status"]["phase"] == "AwaitingReview" and review["status"]["permit"] == permit
    assert review["status"]["approvalsRequired"] == 2 and review["status"]["checks"]
    assert "spe.ehds.io/egress-quarantine" in review["metadata"]["finalizers"]
    # the gateway's record is on its own volume, never a Secret in the permit's namespace
    assert not json.loads(cluster.kubectl("get", "secrets", "-n", ns, "-o", "json", check=True).stdout)["items"]

    gw.call(gw.svc.vote("rev-ada", rid, approve_all(1, "fine")))
    review = _get(cluster, "outputreview", rid, ns)
    assert review["status"]["votes"] == []  # an undecided ballot stays in the gateway's record
    state = json.loads((gw.settings.data_dir / "state" / ns / f"{rid}.json").read_text())["state"]
    assert state["decisions"][0]["reviewer"] == "rev-ada" and state["seal"]["alg"] == "HMAC-SHA256"
    gw.call(gw.svc.vote("rev-bob", rid, approve_all(1)))
    gw.wait_phase(rid, {"Approved"})
    review = _get(cluster, "outputreview", rid, ns)
    assert review["status"]["phase"] == "Approved" and review["status"]["decision"] == "approve"
    assert review["status"]["approvals"] == 2 and len(review["status"]["votes"]) == 2
    assert review["status"]["expiresAt"]

    bundle = tmp_path / "b.zip"
    code, _, err = run_cli(gw, token, "download", rid, "-o", str(bundle), workspace="analysis", namespace=ns)
    assert code == 0, err
    assert zip_members(bundle.read_bytes())["t.csv"] == SAFE_CSV
    deadline = time.monotonic() + 10
    while _get(cluster, "outputreview", rid, ns)["status"]["phase"] != "Released":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    printed = cluster.kubectl("get", "outputreviews", "-n", ns, check=True).stdout
    assert rid in printed and "Released" in printed


def test_permit_rules_are_read_from_the_api_server(kube_gateway, permit_and_workspace, hub, egress_crds, tmp_path):
    gw, cluster = kube_gateway, egress_crds
    permit, ns = permit_and_workspace
    big = tmp_path / "big.csv"
    big.write_bytes(SMALL_CELLS_CSV * 30000)  # over the permit's 1Mi
    code, _, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "request", str(big), "--justification",
                           "Counts for the report.", workspace="analysis", namespace=ns)
    assert code == 5 and "1048576" in err
    code, _, err = run_cli(gw, hub.server_token("mallory", ns, "analysis"), "status")
    assert code == 0  # anyone with a hub token may list their own (empty) requests
    code, _, err = run_cli(gw, hub.server_token("mallory", ns, "analysis"), "request", str(big), "--justification",
                           "Counts for the report.", workspace="analysis", namespace=ns)
    assert code == 4 and "not a member" in err
    cluster.kubectl("patch", "datapermit", permit, "--type=merge", "-p",
                    json.dumps({"spec": {"suspended": True, "suspensionReason": "audit in progress"}}), check=True)
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    code, _, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "request", str(f), "--justification",
                           "Counts for the report.", workspace="analysis", namespace=ns)
    assert code == 4 and "Suspended" in err


def test_returned_phase_is_visible_in_the_cluster(kube_gateway, permit_and_workspace, hub, egress_crds, tmp_path):
    from spe_api import OutputReviewPhase
    gw, cluster = kube_gateway, egress_crds
    _, ns = permit_and_workspace
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    _, out, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "request", str(f), "--justification",
                          "Counts for the report.", workspace="analysis", namespace=ns)
    rid = out.split()[2].rstrip(":")
    gw.wait_phase(rid, {"AwaitingReview"})
    for r in ("rev-ada", "rev-bob"):
        gw.call(gw.svc.vote(r, rid, {0: {"vote": "changes", "comment": "round it", "visibility": "public"}}))
    gw.wait_phase(rid, {"Returned"})
    status = _get(cluster, "outputreview", rid, ns)["status"]
    lifecycle = next(c for c in status["conditions"] if c["type"] == "Lifecycle")
    assert lifecycle["reason"] == "Returned"
    assert "Returned" in {p.value for p in OutputReviewPhase}
    assert status["phase"] == "Returned"
