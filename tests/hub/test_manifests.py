"""manifests/base/hub.yaml: the hub and proxy pods carry the labels the permit namespaces'
NetworkPolicies select, run restricted, and the configuration is the hub's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spe_operator.permits.network import COMPONENT_HUB, COMPONENT_PROXY, component_selector
from spe_operator.settings import SpeSettings
from spe_workspace.hub.config import HubSettings
from tests.hub.on_node import config_literals

pytestmark = pytest.mark.hub

BASE = Path(__file__).resolve().parents[2] / "manifests" / "base"


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all((BASE / "hub.yaml").read_text()) if d}


@pytest.mark.parametrize(("name", "component"), [("spe-hub", COMPONENT_HUB), ("spe-proxy", COMPONENT_PROXY)])
def test_pods_are_selected_by_the_permit_policies_and_restricted(docs, name, component):
    dep = docs[("Deployment", name)]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert component_selector(component)["matchLabels"].items() <= labels.items()
    assert dep["metadata"]["namespace"] == SpeSettings().operator_namespace
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert "@sha256:" in c["image"] and c["image"].startswith("example.invalid/spe/hub@")
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["limits"] and c["resources"]["requests"]


def test_ports_match_what_the_policies_allow(docs):
    settings = SpeSettings()
    hub = docs[("Service", settings.hub_service)]
    assert [p["port"] for p in hub["spec"]["ports"]] == [settings.hub_api_port]
    proxy = docs[("Deployment", "spe-proxy")]["spec"]["template"]["spec"]
    assert proxy["automountServiceAccountToken"] is False
    assert docs[("ServiceAccount", "spe-proxy")]["automountServiceAccountToken"] is False
    assert {p["containerPort"] for p in proxy["containers"][0]["ports"]} == {settings.hub_proxy_port, 8001}


def test_configuration_is_the_hubs_settings():
    s = HubSettings.from_env(config_literals("spe-hub-config"))
    assert s.oidc_client_id == "spe-hub" and s.proxy_should_start is False
    # the hub API URL workspaces get (their hostAliases) is the one the hub hands its servers
    settings = SpeSettings()
    assert s.hub_connect_url == f"http://{settings.hub_service}.{settings.operator_namespace}.svc:{settings.hub_api_port}"


def test_hub_image_is_built_locally_by_default():
    script = (BASE.parents[1] / "images" / "build-local.sh").read_text()
    (line,) = [ln for ln in script.splitlines() if ln.startswith('IMAGES="${SPE_IMAGES:-')]
    assert "hub" in line.split(":-", 1)[1].rstrip('}"').split()
    assert "nodejs" in (BASE.parents[1] / "images" / "hub" / "packages").read_text().split()
