"""The gateway's Deployment is reachable through the permits' NetworkPolicies as built."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spe_api import DataPermit
from spe_operator.permits.network import ALLOW_EGRESS_GATEWAY, build_network_policies
from spe_operator.settings import SpeSettings

pytestmark = pytest.mark.egress

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifests" / "base" / "egress.yaml"
PERMIT_EXAMPLE = ROOT / "examples" / "datapermit.yaml"


def _docs():
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}


def test_gateway_pods_match_the_notebooks_egress_rule():
    docs = _docs()
    settings = SpeSettings()
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert docs["Deployment"]["metadata"]["namespace"] == settings.operator_namespace
    port = container["args"][container["args"].index("--port") + 1]
    assert int(port) == settings.egress_port == container["ports"][0]["containerPort"]
    assert docs["Service"]["spec"]["ports"][0]["port"] == settings.egress_port
    permit = DataPermit.from_manifest(yaml.safe_load(PERMIT_EXAMPLE.read_text()))
    wanted = [p for p in build_network_policies(permit, settings) if p["metadata"]["name"] == ALLOW_EGRESS_GATEWAY]
    (policy,) = wanted
    (rule,) = policy["spec"]["egress"]
    (peer,) = rule["to"]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in peer["podSelector"]["matchLabels"].items()), labels
    assert [p["port"] for p in rule["ports"]] == [settings.egress_port]

