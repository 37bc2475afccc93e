"""The manifests' RBAC on the real API server: the operator runs with it (the session operator's
identity, see tests/fixtures/operator.py) and it is narrow; the hub and the gateway reach only
the permit namespaces the operator binds them in."""

from __future__ import annotations

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.permits

OPERATOR = "system:serviceaccount:spe-system:spe-operator"
HUB = "system:serviceaccount:spe-system:spe-hub"
EGRESS = "system:serviceaccount:spe-system:spe-egress"

# (who, verb, resource, namespace or None for cluster-wide / all namespaces)
MUST_NOT = [
    (OPERATOR, "get", "secrets", "kube-system"),
    (OPERATOR, "list", "secrets", None),
    (OPERATOR, "create", "secrets", "kube-system"),
    (OPERATOR, "patch", "nodes", None),
    (OPERATOR, "create", "clusterroles", None),
    (OPERATOR, "create", "clusterrolebindings", None),
    (OPERATOR, "bind", "clusterroles/cluster-admin", None),
    (OPERATOR, "escalate", "roles", "kube-system"),
    (OPERATOR, "create", "roles", "kube-system"),
    (OPERATOR, "delete", "namespaces", None),
    (OPERATOR, "create", "pods", "kube-system"),
    (OPERATOR, "create", "pods/exec", "kube-system"),
    (OPERATOR, "impersonate", "users", None),
    (OPERATOR, "delete", "validatingwebhookconfigurations/other", None),
    (OPERATOR, "create", "mutatingwebhookconfigurations", None),
    (OPERATOR, "delete", "datapermits.spe.ehds.io", None),
    (HUB, "list", "secrets", "kube-system"),
    (HUB, "list", "workspaces.spe.ehds.io", "kube-system"),
    (HUB, "patch", "datapermits.spe.ehds.io", None),
    (EGRESS, "get", "secrets", "kube-system"),
    (EGRESS, "create", "outputreviews.spe.ehds.io", "default"),
]
MUST = [
    (OPERATOR, "create", "networkpolicies.networking.k8s.io", "spe-anything"),
    (OPERATOR, "delete", "rolebindings.rbac.authorization.k8s.io", "spe-anything"),
    (OPERATOR, "bind", "clusterroles/spe-permit-hub", None),
    (OPERATOR, "patch", "workspaces.spe.ehds.io", "spe-anything"),
    (OPERATOR, "update", "validatingwebhookconfigurations/spe-admission", None),
    (HUB, "list", "datapermits.spe.ehds.io", None),
    (EGRESS, "get", "datapermits.spe.ehds.io", None),
]


def can_i(cluster, who: str, verb: str, resource: str, namespace: str | None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={who}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    result = cluster.kubectl(*args)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
    return answer == "yes"


def test_the_session_operator_runs_as_the_manifests_service_account(cluster, operator, request):
    if request.config.getoption("--operator-identity") == "admin":
        pytest.skip("run with --operator-identity=admin: the operator uses the admin certificate")
    import yaml  # noqa: PLC0415
    from spe_dev.api import Api  # noqa: PLC0415

    token = yaml.safe_load(open(operator.kubeconfig))["users"][0]["user"]["token"]
    review = Api(cluster.server, cluster.ca_file, token=token).create(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review["status"]["userInfo"]["username"] == OPERATOR


@pytest.mark.parametrize("who,verb,resource,namespace", MUST_NOT)
def test_identities_cannot(cluster, operator, who, verb, resource, namespace):
    assert not can_i(cluster, who, verb, resource, namespace)


@pytest.mark.parametrize("who,verb,resource,namespace", MUST)
def test_identities_can(cluster, operator, who, verb, resource, namespace):
    assert can_i(cluster, who, verb, resource, namespace)


def test_hub_and_gateway_reach_only_bound_permit_namespaces(kube, permits):
    body = permits("rbac")
    ns = f"spe-{body['metadata']['name']}"
    wait_for(lambda: kube.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/spe-permit-hub"),
             20, what="hub binding")
    cluster = kube.cluster
    assert can_i(cluster, HUB, "patch", "workspaces.spe.ehds.io", ns)
    assert can_i(cluster, HUB, "create", "secrets", ns)
    assert not can_i(cluster, HUB, "list", "secrets", ns), "the hub never lists a namespace's secrets"
    assert not can_i(cluster, HUB, "create", "workspaces.spe.ehds.io", ns)
    assert not can_i(cluster, HUB, "delete", "workspaces.spe.ehds.io", ns)
    assert not can_i(cluster, HUB, "create", "pods", ns)
    assert can_i(cluster, EGRESS, "create", "outputreviews.spe.ehds.io", ns)
    assert can_i(cluster, EGRESS, "patch", "outputreviews.spe.ehds.io/status", ns)
    assert not can_i(cluster, EGRESS, "patch", "workspaces.spe.ehds.io", ns)
    assert not can_i(cluster, EGRESS, "delete", "outputreviews.spe.ehds.io", ns)
    assert not can_i(cluster, HUB, "patch", "workspaces.spe.ehds.io", "default")
