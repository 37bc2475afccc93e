"""Only the operator writes Dataset status: no Role or ClusterRole in the manifests grants
``datasets/status`` (or a wildcard covering it) to anyone else, and the API server agrees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.dataset

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
STATUS_WRITERS = {("ClusterRole", "spe-operator")}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def _grants_status(rule: dict) -> bool:
    groups, resources = set(rule.get("apiGroups") or []), set(rule.get("resources") or [])
    verbs = set(rule.get("verbs") or [])
    return bool(groups & {"spe.ehds.io", "*"}) and bool(resources & {"datasets/status", "datasets/*", "*", "*/status"}) \
        and bool(verbs & WRITE_VERBS)


def test_no_role_in_the_manifests_but_the_operators_writes_dataset_status():
    writers, roles = set(), 0
    for path in MANIFESTS.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") not in ("Role", "ClusterRole"):
                continue
            roles += 1
            if any(_grants_status(rule) for rule in doc.get("rules") or []):
                writers.add((doc["kind"], doc["metadata"]["name"]))
    assert roles > 5
    assert writers == STATUS_WRITERS


def test_data_holders_write_datasets_but_not_their_status():
    doc = yaml.safe_load((MANIFESTS / "base" / "data-holder-rbac.yaml").read_text())
    assert doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "spe-data-holder"
    assert any("datasets" in r["resources"] and "patch" in r["verbs"] for r in doc["rules"])
    assert not any(_grants_status(r) for r in doc["rules"])


@pytest.mark.parametrize("account,allowed", [("spe-operator", "yes"), ("spe-hub", "no"), ("spe-egress", "no")])
def test_the_api_server_lets_only_the_operator_patch_dataset_status(cluster, spe_crds, operator_kubeconfig, account,
                                                                  allowed):
    out = cluster.kubectl("auth", "can-i", "patch", "datasets.spe.ehds.io", "--subresource=status",
                          f"--as=system:serviceaccount:spe-system:{account}")
    assert out.stdout.strip() == allowed, out.stdout + out.stderr


def test_the_guardrail_admits_the_operators_dataset_claims_in_spe_system_and_no_other(cluster, operator, request):
    if request.config.getoption("--operator-identity") == "admin":
        pytest.skip("needs the operator's ServiceAccount token")
    import time

    import yaml
    from spe_dev.api import Api

    token = yaml.safe_load(open(operator.kubeconfig))["users"][0]["user"]["token"]
    api = Api(cluster.server, cluster.ca_file, token=token)
    path = "/api/v1/namespaces/spe-system/persistentvolumeclaims?dryRun=All"

    def claim(name: str, labels: dict) -> dict:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": "spe-system", "labels": labels},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    ours = {"spe.ehds.io/dataset": "ct", "app.kubernetes.io/component": "dataset-volume"}
    deadline = time.monotonic() + 15
    while True:  # policies take a moment to load after they are applied
        other = api.raw("POST", path, claim("home-of-someone", {"app.kubernetes.io/component": "workspace-volume"}))
        if other[0] not in (200, 201) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert other[0] in (403, 422) and "only in permit namespaces" in other[1], other
    unlabelled = api.raw("POST", path, claim("dataset-ct-r1", {}))
    assert unlabelled[0] in (403, 422), unlabelled
    status, text = api.raw("POST", path, claim("dataset-ct-r1", ours))
    assert status == 201, (status, text)
