"""The permit namespace's NetworkPolicies: deny everything, then allow exactly three paths.

| policy                    | direction | pods          | peer                                              | ports                 |
|---------------------------|-----------|---------------|---------------------------------------------------|-----------------------|
| spe-default-deny          | both      | all           | (none: nothing in, nothing out)                   |                       |
| spe-allow-hub-proxy       | ingress   | workspaces    | the hub's proxy pods, and the hub's own (it checks | TCP notebook_port     |
|                           |           |               | a starting server answers), in the operator's ns  |                       |
| spe-allow-hub-api         | egress    | workspaces    | the hub pods in the operator's namespace          | TCP hub_api_port      |
| spe-allow-egress-gateway  | egress    | workspaces    | the egress gateway pods in the operator's namespace | TCP egress_port     |

Nothing else: no ``ipBlock`` (so not the internet, not the cloud metadata address 169.254.169.254,
not the API server's address), no other namespace, not even the permit's own namespace
(workspaces of one permit do not talk to each other), and no DNS: a resolver that forwards
queries is a tunnel out that no review sees. Workspaces get the addresses of the hub and the
gateway injected instead (``workspaces.statefulset``: ``hostAliases``, ``dnsPolicy: None``). Every peer names its namespace by the
immutable ``kubernetes.io/metadata.name`` label AND its pods by label, in one peer element,
which NetworkPolicy reads as "both" (two elements would mean "either").
"""

from __future__ import annotations

from typing import Any

from spe_api import DataPermit, permit_namespace

from ..children import LABEL_COMPONENT, LABEL_PART_OF, LABEL_WORKSPACE, PART_OF
from ..settings import SpeSettings

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server, cannot be forged

DEFAULT_DENY = "spe-default-deny"
ALLOW_HUB_PROXY = "spe-allow-hub-proxy"
ALLOW_HUB_API = "spe-allow-hub-api"
ALLOW_EGRESS_GATEWAY = "spe-allow-egress-gateway"

# The pods of the other components, in the operator's namespace (manifests/base labels them so).
COMPONENT_HUB = "hub"
COMPONENT_PROXY = "proxy"
COMPONENT_EGRESS = "egress-gateway"


def component_selector(component: str) -> dict[str, Any]:
    return {"matchLabels": {LABEL_PART_OF: PART_OF, LABEL_COMPONENT: component}}


# A workspace's server pods carry spe.ehds.io/workspace (the one adoption helper puts it there).
WORKSPACE_PODS: dict[str, Any] = {"matchExpressions": [{"key": LABEL_WORKSPACE, "operator": "Exists"}]}


def parse_selector(text: str) -> dict[str, str]:
    """``"k=v,k2=v2"`` -> ``{"k": "v", "k2": "v2"}`` (equality selectors only)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"not an equality label selector: {text!r} (expected 'key=value,...')")
        out[key.strip()] = value.strip()
    return out


def _peer(namespace: str, pods: dict[str, Any]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}, "podSelector": pods}


def _tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def build_network_policies(permit: DataPermit, settings: SpeSettings) -> list[dict[str, Any]]:
    ns = permit_namespace(permit.name)
    home = settings.operator_namespace
    return [
        _policy(DEFAULT_DENY, ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(ALLOW_HUB_PROXY, ns, {
            "podSelector": WORKSPACE_PODS, "policyTypes": ["Ingress"],
            # The proxy carries the researcher's traffic; the hub itself asks a starting server
            # whether it is up (JupyterHub's check before it routes to it), and nothing else.
            "ingress": [{"from": [_peer(home, component_selector(COMPONENT_PROXY)),
                                  _peer(home, component_selector(COMPONENT_HUB))],
                         "ports": [_tcp(settings.notebook_port)]}]}),
        _policy(ALLOW_HUB_API, ns, {
            "podSelector": WORKSPACE_PODS, "policyTypes": ["Egress"],
            "egress": [{"to": [_peer(home, component_selector(COMPONENT_HUB))],
                        "ports": [_tcp(settings.hub_api_port)]}]}),
        _policy(ALLOW_EGRESS_GATEWAY, ns, {
            "podSelector": WORKSPACE_PODS, "policyTypes": ["Egress"],
            "egress": [{"to": [_peer(home, component_selector(COMPONENT_EGRESS))],
                        "ports": [_tcp(settings.egress_port)]}]}),
    ]


def policy_table(policies: list[dict[str, Any]]) -> set[tuple]:
    """Flatten policies into rows ``(policy, direction, pods, peer namespace, peer pods, protocol, port)``
    for golden-table comparison; a policy type without rules is one row with ``None`` peers
    (deny). Works on builder output and on what the API server returns (defaults filled in)."""
    def labels(sel: dict[str, Any] | None) -> str:
        if not sel:
            return "*"
        parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
        parts += [f"{e['key']} {e['operator']}" for e in sel.get("matchExpressions") or []]
        return ",".join(parts) or "*"

    rows: set[tuple] = set()
    for pol in policies:
        name, spec = pol["metadata"]["name"], pol["spec"]
        pods = labels(spec.get("podSelector"))
        for direction, key, peer_key in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
            if direction not in spec.get("policyTypes", []):
                continue
            rules = spec.get(key) or []
            if not rules:
                rows.add((name, direction, pods, None, None, None, None))
            for rule in rules:
                peers = rule.get(peer_key) or [None]
                ports = rule.get("ports") or [None]
                for peer in peers:
                    if peer is None:
                        peer_ns, peer_pods = "ANY", "ANY"
                    elif "ipBlock" in peer:
                        peer_ns, peer_pods = f"ipBlock:{peer['ipBlock'].get('cidr')}", "-"
                    else:
                        nsl = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                        peer_ns = nsl.get(NAMESPACE_NAME_LABEL, "OWN" if "namespaceSelector" not in peer else labels(peer.get("namespaceSelector")))
                        peer_pods = labels(peer.get("podSelector"))
                    for port in ports:
                        proto = (port or {}).get("protocol", "TCP") if port else "ANY"
                        rows.add((name, direction, pods, peer_ns, peer_pods, proto, (port or {}).get("port", "ANY")))
    return rows
