"""Unit tests of the pure builders: namespace, quota, limits, network policies, RBAC, the desired set."""

from __future__ import annotations

import pytest

from spe_api import DataPermitPhase
from spe_operator.children import LABEL_OWNER_UID, LABEL_PERMIT
from spe_operator.permits import CHILD_KINDS, desired_children
from spe_operator.permits.namespace import build_namespace
from spe_operator.permits.network import build_network_policies, parse_selector, policy_table
from spe_operator.permits.quota import build_limit_range, build_resource_quota
from spe_operator.permits.rbac import EGRESS_ROLE, HUB_ROLE, build_role_bindings, permit_cluster_roles
from spe_operator.settings import SpeSettings

from .factories import UID, permit

pytestmark = pytest.mark.permits

SETTINGS = SpeSettings(encrypted_storage_classes=["enc-a", "enc-b"], default_storage_class="enc-a")

# The golden table: every path in or out of a permit namespace. A change here is a change of
# the security boundary and must be reviewed as one.
WS = "spe.ehds.io/workspace Exists"
GOLDEN_POLICIES = {
    ("spe-default-deny", "Ingress", "*", None, None, None, None),
    ("spe-default-deny", "Egress", "*", None, None, None, None),
    ("spe-allow-hub-proxy", "Ingress", WS, "spe-system",
     "app.kubernetes.io/component=proxy,app.kubernetes.io/part-of=spe", "TCP", 8888),
    ("spe-allow-hub-proxy", "Ingress", WS, "spe-system",
     "app.kubernetes.io/component=hub,app.kubernetes.io/part-of=spe", "TCP", 8888),
    ("spe-allow-hub-api", "Egress", WS, "spe-system",
     "app.kubernetes.io/component=hub,app.kubernetes.io/part-of=spe", "TCP", 8081),
    ("spe-allow-egress-gateway", "Egress", WS, "spe-system",
     "app.kubernetes.io/component=egress-gateway,app.kubernetes.io/part-of=spe", "TCP", 8080),
}


def test_namespace_enforces_restricted_pod_security():
    ns = build_namespace(permit("p1"), SETTINGS)
    assert ns["metadata"]["name"] == "spe-p1"
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == SETTINGS.pod_security_version


def test_quota_holds_the_ceilings_with_gpus_summed_over_models():
    hard = build_resource_quota(permit("p1"), SETTINGS)["spec"]["hard"]
    assert hard == {
        "requests.cpu": "8", "limits.cpu": "8", "requests.memory": "32Gi", "limits.memory": "32Gi",
        "requests.nvidia.com/gpu": "3", "pods": "5",
        "enc-a.storageclass.storage.k8s.io/requests.storage": "100Gi",
        "enc-b.storageclass.storage.k8s.io/requests.storage": "100Gi",
    }
    assert "requests.storage" not in hard, "dataset claims (class '') must not count against the ceiling"


def test_quota_without_gpus_allows_none():
    p = permit("p1", ceilings={"cpu": "4", "memory": "8Gi", "storage": "10Gi", "gpus": []})
    assert build_resource_quota(p, SETTINGS)["spec"]["hard"]["requests.nvidia.com/gpu"] == "0"


@pytest.mark.parametrize("cpu,memory,expect_default,expect_request", [
    ("8", "32Gi", {"cpu": "1", "memory": "2Gi"}, {"cpu": "250m", "memory": "512Mi"}),
    ("500m", "1Gi", {"cpu": "500m", "memory": "1Gi"}, {"cpu": "250m", "memory": "512Mi"}),
    ("100m", "256Mi", {"cpu": "100m", "memory": "256Mi"}, {"cpu": "100m", "memory": "256Mi"}),
])
def test_limit_range_defaults_never_exceed_the_ceiling(cpu, memory, expect_default, expect_request):
    p = permit("p1", ceilings={"cpu": cpu, "memory": memory, "storage": "10Gi"})
    limits = build_limit_range(p, SETTINGS)["spec"]["limits"]
    container = next(x for x in limits if x["type"] == "Container")
    assert container["default"] == expect_default
    assert container["defaultRequest"] == expect_request
    assert container["max"] == {"cpu": cpu, "memory": memory}
    assert [x["type"] for x in limits] == ["Container"], "no PVC maximum: dataset claims are the data's size"


def test_network_policies_equal_the_golden_table():
    policies = build_network_policies(permit("p1"), SETTINGS)
    assert policy_table(policies) == GOLDEN_POLICIES
    assert {p["metadata"]["namespace"] for p in policies} == {"spe-p1"}


def test_network_policies_follow_the_settings():
    s = SpeSettings(operator_namespace="spe-ops", notebook_port=9999, hub_api_port=1, egress_port=2)
    rows = policy_table(build_network_policies(permit("p1"), s))
    assert ("spe-allow-hub-proxy", "Ingress", WS, "spe-ops",
            "app.kubernetes.io/component=proxy,app.kubernetes.io/part-of=spe", "TCP", 9999) in rows
    assert not any(r[6] == 53 for r in rows), "workspaces have no DNS: no policy may open port 53"
    assert {r[6] for r in rows if r[0] == "spe-allow-hub-api"} == {1}
    assert {r[6] for r in rows if r[0] == "spe-allow-egress-gateway"} == {2}


def test_no_policy_opens_anything_wider_than_a_named_namespace_and_pods():
    for pol in build_network_policies(permit("p1"), SETTINGS):
        spec = pol["spec"]
        for rule in spec.get("ingress", []) + spec.get("egress", []):
            peers = rule.get("from", rule.get("to"))
            assert peers, f"{pol['metadata']['name']}: a rule without peers allows everyone"
            assert rule.get("ports"), f"{pol['metadata']['name']}: a rule without ports allows every port"
            for peer in peers:
                assert "ipBlock" not in peer
                assert peer["namespaceSelector"]["matchLabels"].keys() == {"kubernetes.io/metadata.name"}
                assert peer["podSelector"], "every peer names its pods"


def test_policy_table_sees_wide_rules():
    wide = [{"metadata": {"name": "x"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}},
            {"metadata": {"name": "y"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                                                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}]
    assert policy_table(wide) == {("x", "Egress", "*", "ANY", "ANY", "ANY", "ANY"),
                                  ("y", "Egress", "*", "ipBlock:0.0.0.0/0", "-", "ANY", "ANY")}


def test_parse_selector():
    assert parse_selector("a=b, c=d") == {"a": "b", "c": "d"}
    with pytest.raises(ValueError):
        parse_selector("a")


@pytest.mark.parametrize("phase,hub", [
    (DataPermitPhase.PENDING, True), (DataPermitPhase.ACTIVE, True), (DataPermitPhase.SUSPENDED, True),
    (DataPermitPhase.EXPIRED, False), (DataPermitPhase.REVOKED, False),
])
def test_role_bindings_by_phase(phase, hub):
    bindings = build_role_bindings(permit("p1"), SETTINGS, phase)
    names = {b["metadata"]["name"] for b in bindings}
    assert names == ({HUB_ROLE, EGRESS_ROLE} if hub else {EGRESS_ROLE})
    for b in bindings:
        assert b["kind"] == "RoleBinding" and b["metadata"]["namespace"] == "spe-p1"
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": b["metadata"]["name"]}
        (subject,) = b["subjects"]
        assert subject["namespace"] == "spe-system" and subject["kind"] == "ServiceAccount"
    sas = {b["roleRef"]["name"]: b["subjects"][0]["name"] for b in bindings}
    assert sas.get(EGRESS_ROLE) == "spe-egress" and sas.get(HUB_ROLE, "spe-hub") == "spe-hub"


def _verbs(role):
    out = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                out |= {(group, res, v) for v in rule["verbs"]}
    return out


def test_permit_roles_grant_exactly_the_documented_verbs():
    hub, egress = permit_cluster_roles()
    assert _verbs(hub) == {
        *{("spe.ehds.io", "workspaces", v) for v in ("get", "list", "watch", "patch")},
        *{("", "secrets", v) for v in ("create", "get", "patch", "update", "delete")},
    }
    assert _verbs(egress) == {  # no Secrets: the gateway never reads the hub's credentials (#13)
        ("spe.ehds.io", "workspaces", "get"),
        ("spe.ehds.io", "outputreviews", "create"),
        ("spe.ehds.io", "outputreviews/status", "patch"),
    }
    for role in (hub, egress):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])


def test_desired_children_are_adopted_and_namespace_comes_first():
    p = permit("p1")
    children = desired_children(p, SETTINGS, DataPermitPhase.ACTIVE)
    assert children[0]["kind"] == "Namespace"
    kinds = {(c["apiVersion"], c["kind"]) for c in children}
    assert kinds == set(CHILD_KINDS)
    for child in children:
        md = child["metadata"]
        assert md["labels"][LABEL_PERMIT] == "p1"
        assert md["labels"][LABEL_OWNER_UID] == UID
        assert md["labels"]["app.kubernetes.io/managed-by"] == "spe-operator"
        (owner,) = md["ownerReferences"]
        assert owner == {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit", "name": "p1", "uid": UID,
                         "controller": True, "blockOwnerDeletion": True}
        if child["kind"] != "Namespace":
            assert md["namespace"] == "spe-p1"
    # the namespace keeps its Pod Security labels after adoption
    assert children[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    names = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert len(names) == len(set(names))


def test_desired_children_need_the_server_uid():
    p = permit("p1", uid=None)
    with pytest.raises(ValueError, match="uid"):
        desired_children(p, SETTINGS, DataPermitPhase.ACTIVE)


def test_builders_are_pure():
    p = permit("p1")
    assert desired_children(p, SETTINGS, DataPermitPhase.ACTIVE) == desired_children(p, SETTINGS, DataPermitPhase.ACTIVE)
