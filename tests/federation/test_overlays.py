"""The central and node overlays: one manifest set, federation's role the configuration that
differs; both carry what either role needs (same RBAC, the federation namespace)."""

from __future__ import annotations

import pytest

from spe_operator.settings import SpeSettings
from tests.permits.manifests import MANIFESTS, OVERLAYS, kustomize, without_configuration

pytestmark = pytest.mark.federation

CONFIG = "spe-operator-config"


@pytest.fixture(scope="module")
def rendered():
    return {o: kustomize(MANIFESTS / "overlays" / o) for o in OVERLAYS}


def _config(docs):
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(CONFIG)]
    return cm


def test_roles_differ_only_in_configuration(rendered):
    assert without_configuration(rendered["central"]) == without_configuration(rendered["node"])
    roles = {o: SpeSettings.from_env(_config(rendered[o])["data"]).federation_role for o in OVERLAYS}
    assert roles == {"central": "central", "node": "node"}
    differing = {k for k in set(_config(rendered["central"])["data"]) | set(_config(rendered["node"])["data"])
                 if _config(rendered["central"])["data"].get(k) != _config(rendered["node"])["data"].get(k)}
    assert "SPE_FEDERATION_ROLE" in differing


def test_both_carry_the_federation_rbac_and_namespace(rendered):
    for overlay in OVERLAYS:
        docs = rendered[overlay]
        assert any(d["kind"] == "Namespace" and d["metadata"]["name"] == "spe-federation" for d in docs)
        (role,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "spe-operator"]
        rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"]
                 for r in rule["resources"]}
        assert {"create", "patch", "delete", "list"} <= rules[("work.open-cluster-management.io", "manifestworks")]
        assert rules[("cluster.open-cluster-management.io", "managedclusters")] == {"get", "list", "watch"}
        (fed,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "spe-operator-federation"]
        assert fed["metadata"]["namespace"] == "spe-federation"
        assert fed["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                                 "verbs": ["get", "list", "watch", "create", "patch", "delete"]}]
