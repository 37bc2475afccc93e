"""manifests/: both overlays render, differ only in configuration, and hold what they promise."""

from __future__ import annotations


import pytest

from spe_api.crdgen import rendered_crds
from spe_operator.permits.rbac import permit_cluster_roles, render_permit_roles_manifest
from spe_operator.settings import SpeSettings

from .manifests import MANIFESTS, OVERLAYS, kustomize, load_yaml, without_configuration

pytestmark = pytest.mark.permits

CONFIG = "spe-operator-config"


@pytest.fixture(scope="module")
def rendered():
    return {overlay: kustomize(MANIFESTS / "overlays" / overlay) for overlay in OVERLAYS}


def _key(doc):
    return (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])


def _config_map(docs, name=CONFIG):
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(name)]
    return cm


def _config(docs):
    return _config_map(docs)["data"]


def test_overlays_differ_only_in_configuration(rendered):
    central, node = (without_configuration(rendered[o]) for o in OVERLAYS)
    assert central == node
    assert _config(rendered["central"]) != _config(rendered["node"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_is_valid_operator_settings(rendered, overlay):
    settings = SpeSettings.from_env(_config(rendered[overlay]))
    assert settings.operator_namespace == "spe-system"
    assert settings.webhook_service == "spe-operator-webhook"
    assert settings.default_storage_class in settings.encrypted_storage_classes
    assert not settings.allow_unencrypted_storage


def test_base_holds_every_piece(rendered):
    kinds = {_key(d)[:1] + _key(d)[2:] for d in rendered["central"]}
    for expected in [("Namespace", "spe-system"), ("ServiceAccount", "spe-operator"), ("ServiceAccount", "spe-hub"),
                     ("ServiceAccount", "spe-egress"), ("ClusterRole", "spe-operator"),
                     ("ClusterRoleBinding", "spe-operator"), ("ClusterRole", "spe-permit-hub"),
                     ("ClusterRole", "spe-permit-egress"), ("Deployment", "spe-operator"),
                     ("Service", "spe-operator-webhook"), ("ValidatingWebhookConfiguration", "spe-admission"),
                     ("ValidatingAdmissionPolicy", "spe-operator-permit-bindings"),
                     ("ValidatingAdmissionPolicyBinding", "spe-operator-permit-bindings"),
                     ("ValidatingAdmissionPolicy", "spe-operator-namespaces"),
                     ("CustomResourceDefinition", "datapermits.spe.ehds.io"),
                     ("CustomResourceDefinition", "workspaces.spe.ehds.io"),
                     ("Namespace", "spe-pseudonyms"), ("Role", "spe-egress-pseudonyms"),
                     ("RoleBinding", "spe-egress-pseudonyms")]:
        assert expected in kinds, expected


@pytest.mark.parametrize("name", ["spe-operator", "spe-egress"])
def test_deployments_are_restricted_and_pinned(rendered, name):
    (dep,) = [d for d in rendered["central"] if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert "@sha256:" in c["image"]
    sc = c["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["limits"] and c["resources"]["requests"]


def test_permit_roles_manifest_is_the_builders_output():
    assert load_yaml(MANIFESTS / "base" / "permit-roles.yaml") == permit_cluster_roles()
    assert (MANIFESTS / "base" / "permit-roles.yaml").read_text() == render_permit_roles_manifest(), \
        "run `python -m spe_operator.permits.rbac > manifests/base/permit-roles.yaml`"


def test_crds_in_the_base_are_the_generated_ones():
    on_disk = {p.name: p.read_text() for p in (MANIFESTS / "base" / "crds").glob("*.yaml")}
    assert on_disk == rendered_crds(), "run `spe-operator crds -o manifests/base/crds`"


def test_no_rbac_rule_uses_wildcards_or_dangerous_verbs(rendered):
    for doc in rendered["central"]:
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in doc.get("rules", []):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (doc["metadata"]["name"], rule)
            assert not {"escalate", "impersonate"} & set(rule["verbs"]), (doc["metadata"]["name"], rule)
            if "bind" in rule["verbs"]:
                assert rule.get("resourceNames") == ["spe-permit-hub", "spe-permit-egress"]
            if "secrets" in rule["resources"] and doc["kind"] == "ClusterRole":
                assert doc["metadata"]["name"] in ("spe-permit-hub", "spe-permit-egress"), \
                    "secrets only in the per-namespace templates"
