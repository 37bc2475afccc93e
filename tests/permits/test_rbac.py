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
    wait_for("hub binding",
             lambda: kube.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/spe-permit-hub"),
             20)
    cluster = kube.cluster
    assert can_i(cluster, HUB, "patch", "workspaces.spe.ehds.io", ns)
    assert can_i(cluster, HUB, "create", "secrets", ns)
    assert not can_i(cluster, HUB, "list", "secrets", ns), "the hub never lists a namespace's secrets"
    assert not can_i(cluster, HUB, "create", "workspaces.spe.ehds.io", ns)
    assert not can_i(cluster, HUB, "delete", "workspaces.spe.ehds.io", ns)
    assert not can_i(cluster, HUB, "create", "pods", ns)
    assert can_i(cluster, EGRESS, "create", "outputreviews.spe.ehds.io", ns)
    assert cluster.kubectl("auth", "can-i", "patch", "outputreviews.spe.ehds.io", "--subresource=status",
                           f"--as={EGRESS}", "-n", ns).stdout.strip() == "yes"
    assert not can_i(cluster, EGRESS, "list", "secrets", ns), "the gateway never reads the hub's credentials"
    assert not can_i(cluster, EGRESS, "patch", "workspaces.spe.ehds.io", ns)
    assert not can_i(cluster, EGRESS, "delete", "outputreviews.spe.ehds.io", ns)
    assert not can_i(cluster, HUB, "patch", "workspaces.spe.ehds.io", "default")


def _operator_api(cluster, operator):
    import yaml  # noqa: PLC0415
    from spe_dev.api import Api  # noqa: PLC0415

    token = yaml.safe_load(open(operator.kubeconfig))["users"][0]["user"]["token"]
    return Api(cluster.server, cluster.ca_file, token=token)


def _binding(namespace: str, role: str = "spe-permit-hub", sa: str = "spe-hub") -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "guardrail-probe", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "spe-system"}]}


def test_guardrails_confine_what_the_operator_may_bind_and_label(kube, permits, operator, request):
    """What RBAC cannot express, the ValidatingAdmissionPolicies of manifests/base do: the
    operator binds the templates only in permit namespaces, only to the hub and the gateway,
    and creates or changes only permit namespaces."""
    if request.config.getoption("--operator-identity") == "admin":
        pytest.skip("needs the operator's ServiceAccount token")
    cluster = kube.cluster
    api = _operator_api(cluster, operator)
    body = permits("guard")
    ns = f"spe-{body['metadata']['name']}"
    wait_for("permit namespace", lambda: kube.get(f"/api/v1/namespaces/{ns}"), 20)

    def dry_create(path, obj):
        return api.raw("POST", f"{path}?dryRun=All", obj)

    rolebindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings"
    # allowed: the real thing
    assert dry_create(rolebindings.format(ns), _binding(ns))[0] == 201
    # refused by policy (RBAC alone would allow each of these)
    for namespace, role, sa, why in [
        ("kube-system", "spe-permit-hub", "spe-hub", "only in permit namespaces"),
        ("spe-system", "spe-permit-egress", "spe-egress", "only in permit namespaces"),
        (ns, "spe-permit-hub", "spe-operator", "only to the hub's and the gateway's"),
    ]:
        status, text = wait_for(
            f"policy refusing a binding in {namespace} to {sa}",
            lambda: (r := dry_create(rolebindings.format(namespace), _binding(namespace, role, sa)))[0] != 201 and r,
            10)
        assert status in (403, 422) and why in text, (status, text)
    status, text = wait_for(
        "policy refusing to label kube-system",
        lambda: (r := api.raw("PATCH", "/api/v1/namespaces/kube-system?dryRun=All",
                              {"metadata": {"labels": {"spe.ehds.io/permit": "x"}}},
                              "application/merge-patch+json"))[0] != 200 and r,
        10)
    assert status in (403, 422) and "only permit namespaces" in text, (status, text)
