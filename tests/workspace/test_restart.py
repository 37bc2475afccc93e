"""Restarting the operator mid-reconcile converges without duplicate children, and a restart
while the server runs leaves the server alone (the same pod)."""

from __future__ import annotations

import secrets

import pytest

from .conftest import PermitEnv
from .helpers import condition, wait_for, ws_path

pytestmark = pytest.mark.workspace

SELECTOR = "spe.ehds.io/workspace=ws"


def children(kube, ns: str) -> dict[str, list[dict]]:
    return {
        "StatefulSet": kube.items(f"/apis/apps/v1/namespaces/{ns}/statefulsets", SELECTOR),
        "Service": kube.items(f"/api/v1/namespaces/{ns}/services", SELECTOR),
        "PersistentVolumeClaim": kube.items(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", SELECTOR),
        "Pod": kube.items(f"/api/v1/namespaces/{ns}/pods", SELECTOR),
    }


def test_restart_mid_reconcile_converges_without_duplicates(spe_crds, storage_provisioner, exclusive_operator_factory,
                                                          kube, tool_name, dataset_name):
    env = PermitEnv(kube, f"t{secrets.token_hex(4)}", tool_name, dataset_name)
    try:
        with exclusive_operator_factory():
            env.create_permit()
            kube.create(env.workspace(running=True))
            # Stop the operator as soon as the reconcile has begun creating children.
            wait_for("the first child", lambda: any(children(kube, env.namespace).values()), timeout=60,
                     interval=0.05)
        with exclusive_operator_factory():
            def running():
                ws = kube.get_or_none(ws_path(env.namespace, "ws"))
                return ws if (ws.get("status") or {}).get("phase") == "Running" else None
            wait_for("Running after the restart", running, timeout=90)
            first = children(kube, env.namespace)
        assert {k: len(v) for k, v in first.items()} == {"StatefulSet": 1, "Service": 1,
                                                         "PersistentVolumeClaim": 2, "Pod": 1}
        pod_uid = first["Pod"][0]["metadata"]["uid"]
        before = kube.get_or_none(ws_path(env.namespace, "ws"))["status"]
        with exclusive_operator_factory():
            def settled():
                ws = kube.get_or_none(ws_path(env.namespace, "ws"))
                return ws["status"]["phase"] == "Running" and ws["status"]["observedGeneration"] == ws["metadata"]["generation"]
            wait_for("still Running", settled, timeout=30)
            again = children(kube, env.namespace)
        assert {k: len(v) for k, v in again.items()} == {k: len(v) for k, v in first.items()}
        assert again["Pod"][0]["metadata"]["uid"] == pod_uid, "an operator restart must not restart the server"
        after = kube.get_or_none(ws_path(env.namespace, "ws"))["status"]
        # Never left Running: neither the server's start nor Ready's transition moved.
        assert after["startedAt"] == before["startedAt"]
        assert condition({"status": after}, "Ready")["lastTransitionTime"] == \
            condition({"status": before}, "Ready")["lastTransitionTime"]
        assert again["StatefulSet"][0]["metadata"]["generation"] == first["StatefulSet"][0]["metadata"]["generation"]
    finally:
        env.cleanup()
