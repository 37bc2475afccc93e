"""Issue #13 on the real control plane, with the gateway's and the hub's own service accounts
and the roles of manifests/base: the hub cannot forge the gateway's record (1), the gateway
cannot read the hub's credentials (2), deleting a request or its permit leaves no quarantined
files behind (9), and a permit's reviewer list is validated by the API server (11)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from spe_kube import KubeClient

from .conftest import RESEARCHER
from .helpers import SAFE_CSV, run_cli
from .test_kube import (_apply, egress_crds, gateway_kubeconfig, kube_gateway,  # noqa: F401 - fixtures
                        permit_and_workspace)

pytestmark = pytest.mark.egress

GATEWAY_SA = "system:serviceaccount:spe-system:spe-egress"
HUB_SA = "system:serviceaccount:spe-system:spe-hub"


def _bind_hub(cluster, ns: str) -> None:
    _apply(cluster, {  # what the operator grants the hub in each permit's namespace
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "spe-permit-hub", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "spe-permit-hub"},
        "subjects": [{"kind": "ServiceAccount", "name": "spe-hub", "namespace": "spe-system"}]})


def _request(gw, hub, tmp_path, ns: str) -> str:
    f = tmp_path / "t.csv"
    f.write_bytes(SAFE_CSV)
    code, out, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "request", str(f), "--justification",
                             "Counts for the report.", workspace="analysis", namespace=ns)
    assert code == 0, err
    rid = out.split()[2].rstrip(":")
    gw.wait_phase(rid, {"AwaitingReview"})
    return rid


def _can_i(cluster, who: str, *args: str) -> str:
    return cluster.kubectl("auth", "can-i", *args, "--as", who).stdout.strip()


def test_the_hub_cannot_forge_an_approval(kube_gateway, permit_and_workspace, hub, egress_crds, tmp_path):
    gw, cluster = kube_gateway, egress_crds
    permit, ns = permit_and_workspace
    _bind_hub(cluster, ns)
    rid = _request(gw, hub, tmp_path, ns)
    # the hub's service account writes an Approved record where the gateway used to keep it
    forged = {"phase": "Approved", "round": 1, "permit": permit, "decidedRounds": [1],
              "files": gw.call(gw.store.find_review(rid))["spec"]["files"],
              "release": {"round": 1, "approvedFiles": [0], "expires": int(time.time()) + 3600,
                          "expiresAt": "2099-01-01T00:00:00Z", "downloads": 0}}
    hub_token = cluster.kubectl("create", "token", "spe-hub", "-n", "spe-system", check=True).stdout.strip()
    as_hub = cluster.api(hub_token)
    data = {"state.json": base64.b64encode(json.dumps(forged).encode()).decode()}
    status, text = as_hub.raw("POST", f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{rid}-egress", "namespace": ns}, "data": data})
    if status == 409:  # the gateway's record is there: the hub's role may patch it
        status, text = as_hub.raw("PATCH", f"/api/v1/namespaces/{ns}/secrets/{rid}-egress", {"data": data},
                                  "application/merge-patch+json")
    assert status < 300, text  # the hub may write Secrets in the permit's namespace (its own tokens)
    obj = gw.call(gw.store.find_review(rid))
    assert obj["status"]["phase"] == "AwaitingReview"
    assert gw.svc.download_path(obj) is None
    code, _, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "download", rid, "-o", str(tmp_path / "b.zip"),
                           workspace="analysis", namespace=ns)
    assert code == 7, err
    # the record lives on the gateway's own volume, never in the permit's namespace
    assert (gw.settings.data_dir / "state" / ns / f"{rid}.json").exists()
    review = json.loads(cluster.kubectl("get", "outputreview", rid, "-n", ns, "-o", "json", check=True).stdout)
    assert review["status"]["phase"] == "AwaitingReview"


def test_the_gateway_cannot_read_hub_credentials(kube_gateway, permit_and_workspace, egress_crds):
    cluster = egress_crds
    _, ns = permit_and_workspace
    _apply(cluster, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": "jupyter-rita-analysis", "namespace": ns},
                     "stringData": {"JUPYTERHUB_API_TOKEN": "hub-token-of-rita"}})
    for verb in ("list", "watch", "get", "create", "patch"):
        assert _can_i(cluster, GATEWAY_SA, verb, "secrets", "-n", ns) == "no", verb
    assert _can_i(cluster, GATEWAY_SA, "get", "secrets/jupyter-rita-analysis", "-n", ns) == "no"
    as_gateway = cluster.api(gateway_kubeconfig(cluster).token)
    from spe_dev.api import HttpError
    for path in (f"/api/v1/namespaces/{ns}/secrets/jupyter-rita-analysis", f"/api/v1/namespaces/{ns}/secrets"):
        with pytest.raises(HttpError) as err:
            as_gateway.get(path)
        assert err.value.status == 403, path
    # what it needs it still has
    assert _can_i(cluster, GATEWAY_SA, "create", "outputreviews.spe.ehds.io", "-n", ns) == "yes"
    assert _can_i(cluster, GATEWAY_SA, "get", "workspaces.spe.ehds.io", "-n", ns) == "yes"
    assert _can_i(cluster, GATEWAY_SA, "list", "secrets", "-n", "spe-system") == "no"


def _wait(what, check, timeout=60.0, every=None):
    deadline = time.monotonic() + timeout
    while not check():
        if every:
            every()
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_deleting_a_request_or_its_permit_purges_its_quarantine(kube_gateway, permit_and_workspace, hub,
                                                                egress_crds, tmp_path):
    gw, cluster = kube_gateway, egress_crds
    _, ns = permit_and_workspace
    one = _request(gw, hub, tmp_path, ns)
    two = _request(gw, hub, tmp_path, ns)
    review = json.loads(cluster.kubectl("get", "outputreview", one, "-n", ns, "-o", "json", check=True).stdout)
    assert "spe.ehds.io/egress-quarantine" in review["metadata"].get("finalizers", [])
    assert gw.svc.quarantine.exists(ns, one) and gw.svc.quarantine.exists(ns, two)

    cluster.kubectl("delete", "outputreview", one, "-n", ns, "--wait=false", check=True)
    _wait("the deleted request's files are purged and the finalizer released",
          lambda: not gw.svc.quarantine.exists(ns, one)
          and cluster.kubectl("get", "outputreview", one, "-n", ns).returncode != 0,
          every=lambda: gw.call(gw.svc.reap()))
    purged = [e for e in gw.audit() if e["action"] == "export.purged" and e["target"] == f"{ns}/{one}"]
    assert purged
    # the permit's namespace goes (as it does with its permit): every request's files go with it,
    # and the request no longer holds the namespace (whatever other controllers' objects still do)
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=True)
    _wait("the namespace's requests are purged and their finalizers released",
          lambda: not gw.svc.quarantine.exists(ns, two)
          and cluster.kubectl("get", "outputreview", two, "-n", ns).returncode != 0,
          timeout=120, every=lambda: gw.call(gw.svc.reap()))
    assert not (gw.settings.data_dir / "state" / ns / f"{two}.json").exists()


def test_a_permits_reviewers_are_never_its_members(egress_crds, namespace, permit_and_workspace):
    cluster = egress_crds
    permit, _ = permit_and_workspace  # names rev-ada and rev-bob as reviewers: accepted
    stored = json.loads(cluster.kubectl("get", "datapermit", permit, "-o", "json", check=True).stdout)
    assert stored["spec"]["exportPolicy"]["reviewers"] == ["rev-ada", "rev-bob"]
    doc = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": f"rv-{namespace[-6:]}"},
           "spec": {"permitId": "TEST-REVIEWERS", "purpose": "Testing who may review the exports.",
                    "members": [{"subject": "rita", "role": "researcher"}], "datasets": ["x"],
                    "notAfter": "2099-01-01T00:00:00Z",
                    "exportPolicy": {"reviewersRequired": 2, "reviewers": ["Rita", "rev-bob"]}}}
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
    assert refused.returncode != 0 and "member" in refused.stderr, refused.stderr
    doc["spec"]["exportPolicy"]["reviewers"] = ["rev-ada"]  # fewer than reviewersRequired
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
    assert refused.returncode != 0 and "reviewersRequired" in refused.stderr, refused.stderr


def test_a_review_the_api_server_refuses_leaves_no_record(egress_crds, tmp_path):
    """The record is written first; when the OutputReview cannot be made, it is rolled back."""
    import asyncio

    from spe_egress.kube_store import KubeStore
    from spe_kube import ApiError

    store = KubeStore(KubeClient(gateway_kubeconfig(egress_crds), field_manager="spe-egress"), tmp_path / "state")
    obj = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "OutputReview",
           "metadata": {"name": "er-0123456789", "namespace": "default"},  # not a permit's namespace: 403
           "spec": {"requester": RESEARCHER, "workspace": "analysis", "justification": "Counts for the report.",
                    "files": [{"name": "t.csv", "size": 1, "sha256": "0" * 64}]},
           "status": {"phase": "Submitted"}}

    async def attempt():
        try:
            await store.create_review(obj)
        finally:
            await store.close()
    with pytest.raises(ApiError) as err:
        asyncio.run(attempt())
    assert err.value.status == 403
    assert not list((tmp_path / "state").rglob("*.json"))
