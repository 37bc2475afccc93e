"""spe-system, the SPE's own namespace, is isolated like a permit namespace:
deny all, then exactly the paths its components need -- which must all still be open."""

from __future__ import annotations

import pytest

from spe_operator.permits.network import policy_table

from .manifests import MANIFESTS, OVERLAYS, kustomize

pytestmark = pytest.mark.permits

NS = "spe-system"


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return kustomize(MANIFESTS / "overlays" / request.param)


def _policies(docs):
    return [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"].get("namespace") == NS]


def _selects(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        op, key = expr["operator"], expr["key"]
        if op == "Exists" and key not in labels or op == "DoesNotExist" and key in labels:
            return False
        if op == "In" and labels.get(key) not in expr["values"] or op == "NotIn" and labels.get(key) in expr["values"]:
            return False
    return True


def _admits(policies, labels: dict, port: int, direction: str = "Ingress") -> bool:
    key = direction.lower()
    for pol in policies:
        spec = pol["spec"]
        if direction not in spec.get("policyTypes", []) or not _selects(spec.get("podSelector") or {}, labels):
            continue
        for rule in spec.get(key) or []:
            ports = rule.get("ports")
            if ports is None or any(p.get("port") == port for p in ports):
                return True
    return False


def test_spe_system_denies_everything_by_default(rendered):
    rows = policy_table(_policies(rendered))
    assert ("spe-system-default-deny", "Ingress", "*", None, None, None, None) in rows
    assert ("spe-system-default-deny", "Egress", "*", None, None, None, None) in rows


def test_no_rule_opens_spe_system_wholesale(rendered):
    for pol in _policies(rendered):
        for direction, key, peer in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
            for rule in pol["spec"].get(key) or []:
                assert rule.get("ports"), f"{pol['metadata']['name']}: a {direction} rule without ports opens every port"
                for p in rule.get(peer) or []:
                    if "ipBlock" in p:
                        assert "169.254.0.0/16" in p["ipBlock"].get("except", []), \
                            f"{pol['metadata']['name']}: the cloud metadata address is reachable"


def test_every_component_port_in_spe_system_stays_reachable(rendered):
    policies = _policies(rendered)
    deployments = [d for d in rendered if d["kind"] == "Deployment" and d["metadata"].get("namespace") == NS]
    assert deployments
    for dep in deployments:
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for container in dep["spec"]["template"]["spec"]["containers"]:
            for port in container.get("ports") or []:
                assert _admits(policies, labels, port["containerPort"]), \
                    f"{dep['metadata']['name']}: port {port['containerPort']} is closed by spe-system's policies"
        assert _admits(policies, labels, 53, "Egress"), f"{dep['metadata']['name']} has no DNS"
        if labels.get("app.kubernetes.io/component") in ("operator", "egress-gateway"):
            assert _admits(policies, labels, 443, "Egress"), f"{dep['metadata']['name']} cannot reach the API server"


def test_workspaces_reach_exactly_the_hub_api_and_the_gateway(rendered):
    policies = _policies(rendered)
    hub = {"app.kubernetes.io/part-of": "spe", "app.kubernetes.io/component": "hub"}
    gateway = {"app.kubernetes.io/part-of": "spe", "app.kubernetes.io/component": "egress-gateway"}
    operator = {"app.kubernetes.io/part-of": "spe", "app.kubernetes.io/component": "operator"}
    assert _admits(policies, hub, 8081) and _admits(policies, gateway, 8080)
    # the operator's webhook port is the only way into the operator
    assert not _admits(policies, operator, 8080) and not _admits(policies, operator, 8081)
