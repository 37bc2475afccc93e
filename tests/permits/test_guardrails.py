"""The operator's ClusterRole must grant its kinds cluster-wide (permit namespaces come and go);
the guardrails of manifests/base confine every write to permit namespaces.

For each kind: RBAC says yes in kube-system (``auth can-i``), and a real create (or delete)
with the operator's own ServiceAccount token is refused there by a ValidatingAdmissionPolicy,
while the same request in a permit namespace is admitted."""

from __future__ import annotations

import pytest

from tests.fixtures.operator import TEST_HOSTPATH_PREFIXES

from .conftest import wait_for
from .test_rbac import OPERATOR, _operator_api, can_i

pytestmark = pytest.mark.permits

POD_TEMPLATE = {"metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/x@sha256:" + "a" * 64}]}}


def _namespaced(namespace: str) -> list[tuple[str, str, dict]]:
    """(resource for can-i, collection path, object) of each namespaced kind the operator writes."""
    md = {"name": "guardrail-probe", "namespace": namespace}
    return [
        ("statefulsets.apps", f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
         {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": md,
          "spec": {"serviceName": "x", "selector": {"matchLabels": {"app": "probe"}}, "template": POD_TEMPLATE}}),
        ("services", f"/api/v1/namespaces/{namespace}/services",
         {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": {"ports": [{"port": 80}]}}),
        ("persistentvolumeclaims", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
         {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
          "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        ("resourcequotas", f"/api/v1/namespaces/{namespace}/resourcequotas",
         {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": md, "spec": {"hard": {"pods": "1"}}}),
        ("limitranges", f"/api/v1/namespaces/{namespace}/limitranges",
         {"apiVersion": "v1", "kind": "LimitRange", "metadata": md,
          "spec": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]}}),
        ("networkpolicies.networking.k8s.io", f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
         {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": md,
          "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}}),
    ]


def _pv(name: str, claim_namespace: str, path: str = "/", **source) -> dict:
    spec = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "", "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                 "namespace": claim_namespace, "name": "ds.probe"}}
    spec.update(source or {"hostPath": {"path": path}})
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def operator_api(operator, request, cluster):
    if request.config.getoption("--operator-identity") == "admin":
        pytest.skip("needs the operator's ServiceAccount token")
    return _operator_api(cluster, operator)


def _refused(api, path: str, obj: dict) -> tuple[int, str]:
    """Dry-run create with the operator's token until a policy refuses it (policies take a moment
    to be loaded after they are applied)."""
    return wait_for(f"a policy refusing {obj['kind']} {path}",
                    lambda: (r := api.raw("POST", f"{path}?dryRun=All", obj))[0] not in (200, 201) and r,
                    10)


def test_rbac_allows_each_kind_in_kube_system_but_the_guardrails_refuse_it(kube, permits, operator_api):
    cluster = kube.cluster
    body = permits("guard")
    ns = f"spe-{body['metadata']['name']}"
    wait_for("permit namespace",
             lambda: kube.get(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/spe-default-deny"),
             20)
    for resource, path, obj in _namespaced("kube-system"):
        assert can_i(cluster, OPERATOR, "create", resource, "kube-system"), f"RBAC: {resource}"
        status, text = _refused(operator_api, path, obj)
        assert status in (403, 422) and "only in permit namespaces" in text, (resource, status, text)
    # The same requests in a permit namespace are admitted: the guardrail is no blanket refusal.
    for resource, path, obj in _namespaced(ns):
        status, text = operator_api.raw("POST", f"{path}?dryRun=All", obj)
        assert status == 201, (resource, status, text)


def test_the_operator_cannot_delete_outside_permit_namespaces(kube, operator_api):
    cluster = kube.cluster
    path = "/apis/networking.k8s.io/v1/namespaces/kube-system/networkpolicies"
    probe = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "guardrail-delete-probe", "namespace": "kube-system"},
             "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    kube.create(path, probe)
    try:
        assert can_i(cluster, OPERATOR, "delete", "networkpolicies.networking.k8s.io", "kube-system")
        status, text = wait_for("a policy refusing the delete",
                                lambda: (r := operator_api.raw("DELETE", f"{path}/guardrail-delete-probe?dryRun=All"))[0]
                                != 200 and r, 10)
        assert status in (403, 422) and "only in permit namespaces" in text, (status, text)
        assert kube.get(f"{path}/guardrail-delete-probe") is not None
    finally:
        kube.delete(f"{path}/guardrail-delete-probe")


def test_the_operator_makes_only_read_only_dataset_volumes(kube, permits, operator_api):
    cluster = kube.cluster
    body = permits("pv")
    ns = f"spe-{body['metadata']['name']}"
    wait_for("permit namespace", lambda: kube.get(f"/api/v1/namespaces/{ns}"), 20)
    path = "/api/v1/persistentvolumes"
    assert can_i(cluster, OPERATOR, "create", "persistentvolumes", None)
    for pv, why in [
        (_pv("ds.kube-system.probe", "kube-system"), "in a permit namespace"),
        (_pv(f"ds.{ns}.probe", ns, "/"), "must lie under a prefix"),
        (_pv(f"ds.{ns}.probe", ns, TEST_HOSTPATH_PREFIXES.rstrip("/") + "-sibling/etc"), "must lie under a prefix"),
        (_pv(f"ds.{ns}.probe", ns, rbd={"monitors": ["10.0.0.1"], "image": "x", "readOnly": True}),
         "exactly one source"),
        (_pv(f"ds.{ns}.probe", ns, csi={"driver": "x", "volumeHandle": "h"}), "read-only"),
        ({**_pv(f"ds.{ns}.probe", ns, csi={"driver": "x", "volumeHandle": "h", "readOnly": True}),
          "metadata": {"name": "node-root"}}, "pre-bound to claim"),
    ]:
        status, text = _refused(operator_api, path, pv)
        assert status in (403, 422) and why in text, (pv["spec"], status, text)
    ok = _pv(f"ds.{ns}.probe", ns, csi={"driver": "x", "volumeHandle": "h", "readOnly": True})
    status, text = operator_api.raw("POST", f"{path}?dryRun=All", ok)
    assert status == 201, (status, text)
