"""The install's identity settings: the operator's Keycloak client secret comes from a Secret,
never the ConfigMap; every SPE_KEYCLOAK_* key is a setting; the RBAC to keep the finalizer."""

from __future__ import annotations

import pytest

from spe_operator.settings import ENV_PREFIX, SpeSettings
from tests.permits.manifests import MANIFESTS, OVERLAYS, kustomize

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    return kustomize(MANIFESTS / "overlays" / request.param)


def _one(docs: list[dict], kind: str, name: str) -> dict:
    # ConfigMaps carry kustomize's hash suffix
    (doc,) = [d for d in docs if d["kind"] == kind and (d["metadata"]["name"] == name or (
        kind == "ConfigMap" and d["metadata"]["name"].startswith(f"{name}-")))]
    return doc


def test_the_client_secret_is_read_from_a_secret_and_never_from_the_configmap(rendered):
    for doc in rendered:
        if doc["kind"] == "ConfigMap":
            # a secret's value never; the path of a mounted secret file (..._SECRET_FILE) may be named
            assert not any("SECRET" in key and not key.endswith("_FILE") for key in doc.get("data") or {}), \
                doc["metadata"]["name"]
    deployment = _one(rendered, "Deployment", "spe-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env["SPE_KEYCLOAK_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "spe-operator-keycloak", "key": "client-secret", "optional": True}


def test_every_keycloak_key_of_the_configuration_is_a_setting(rendered):
    config = _one(rendered, "ConfigMap", "spe-operator-config")["data"]
    keys = [k for k in config if k.startswith(f"{ENV_PREFIX}KEYCLOAK_")]
    assert keys, "the operator's configuration names the realm and clients"
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in SpeSettings.model_fields}
    assert set(keys) <= fields
    settings = SpeSettings.from_env({k: v for k, v in config.items() if k in fields})
    assert settings.keycloak_client_id == "spe-operator" and settings.keycloak_hub_client_id == "spe-hub"
    assert not settings.identity_configured, "no Keycloak URL nor secret in the base: sync off until a site sets them"


def test_the_operator_may_patch_permits_only_under_the_finalizer_guardrail(rendered):
    role = _one(rendered, "ClusterRole", "spe-operator")
    rules = [r for r in role["rules"] if "datapermits" in r["resources"] and "spe.ehds.io" in r["apiGroups"]]
    assert sorted(v for r in rules for v in r["verbs"]) == ["get", "list", "patch", "watch"]
    policy = _one(rendered, "ValidatingAdmissionPolicy", "spe-operator-permit-finalizer-only")
    text = str(policy["spec"]["validations"])
    assert "object.spec == oldObject.spec" in text and "spe.ehds.io/identity-group" in text
    _one(rendered, "ValidatingAdmissionPolicyBinding", "spe-operator-permit-finalizer-only")
