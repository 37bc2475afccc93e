"""Workspaces on the real control plane: scheduling by GPU model, the scheduler's reasons,
read-only datasets, permit expiry, drift repair, deletion, admission of over-ceiling requests."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spe_audit import verify
from spe_dev.api import HttpError

from . import factories as f
from .helpers import condition, wait_for, ws_path

pytestmark = pytest.mark.workspace

L40S = {"count": 1, "model": "NVIDIA-L40S"}


def ws_status(kube, env, name="ws") -> dict | None:
    return kube.get_or_none(ws_path(env.namespace, name))


def wait_phase(kube, env, phase: str, name: str = "ws", timeout: float = 90) -> dict:
    def probe():
        ws = ws_status(kube, env, name)
        return ws if ws and (ws.get("status") or {}).get("phase") == phase else None
    try:
        return wait_for(f"workspace {name} phase {phase}", probe, timeout=timeout)
    except BaseException:
        print("last workspace:", ws_status(kube, env, name))
        raise


def sts_of(kube, env, name="ws") -> dict | None:
    return kube.get_or_none(f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets/{name}")


def test_gpu_workspace_runs_on_the_l40s_node(kube, ws_env):
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True, gpus=L40S))
    ws = wait_phase(kube, env, "Running")
    st = ws["status"]
    assert st["node"] == "spe-gpu-l40s"
    assert st["gpus"] == 1
    assert st["url"] == f"http://ws.{env.namespace}.svc:8888"
    assert condition(ws, "Ready")["status"] == "True"
    assert condition(ws, "Scheduled")["status"] == "True"
    assert condition(ws, "PermitActive")["status"] == "True"
    assert condition(ws, "VolumesReady")["status"] == "True"
    assert st["observedGeneration"] == ws["metadata"]["generation"]
    pod = kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0")
    assert pod["spec"]["nodeName"] == "spe-gpu-l40s"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    claims = kube.items(f"/api/v1/namespaces/{env.namespace}/persistentvolumeclaims",
                        "spe.ehds.io/workspace=ws")
    assert sorted(c["metadata"]["name"] for c in claims) == ["ws-home", "ws-outputs"]
    assert all(c["spec"]["storageClassName"] == "spe-encrypted" and c["status"]["phase"] == "Bound" for c in claims)
    events = kube.items(f"/api/v1/namespaces/{env.namespace}/events")
    assert any(e["reason"] == "Started" and e["involvedObject"]["name"] == "ws" for e in events)


def test_more_gpus_than_free_is_unschedulable_with_the_schedulers_reason(kube, ws_env):
    env = ws_env
    env.create_permit()
    # The L40S node has 2; the permit's ceiling allows 4, so admission lets it through.
    kube.create(env.workspace(running=True, gpus={"count": 3, "model": "NVIDIA-L40S"}))

    def unschedulable():
        # (The scheduler's first answer may be that the claims are not bound yet.)
        ws = ws_status(kube, env)
        cond = condition(ws, "Scheduled")
        return ws if cond and cond["status"] == "False" and cond["reason"] == "Unschedulable" \
            and "Insufficient nvidia.com/gpu" in cond["message"] else None
    ws = wait_for("Scheduled=False for want of GPUs", unschedulable, timeout=90)
    message = condition(ws, "Scheduled")["message"]
    assert message.startswith("0/"), message  # the scheduler's own words: "0/N nodes are available: ..."
    assert ws["status"]["phase"] == "Pending"
    assert condition(ws, "Ready")["status"] == "False"
    assert "url" not in ws["status"]


def test_over_the_permits_ceiling_is_refused_at_admission(kube, ws_env):
    env = ws_env
    # The session's operator registers its webhook; without it this test would prove nothing.
    wait_for("the operator's validating webhook", lambda: [
        w for w in kube.items("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations")
        if w["metadata"]["name"].startswith("spe-admission")])
    env.create_permit(gpus=[{"model": "NVIDIA-L40S", "count": 1}])
    with pytest.raises(HttpError) as refused:
        kube.create(env.workspace(running=True, gpus={"count": 2, "model": "NVIDIA-L40S"}))
    assert refused.value.status in (400, 403, 422)
    assert "spec.resources.gpus.count" in refused.value.body


def test_permit_expiry_stops_the_server_within_seconds(kube, ws_env):
    env = ws_env
    not_after = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=45)
    env.create_permit(not_after=not_after)
    kube.create(env.workspace(running=True))
    wait_phase(kube, env, "Running", timeout=40)
    remaining = (not_after - datetime.now(timezone.utc)).total_seconds()
    assert remaining > 0, "too slow to start before the permit's end; nothing measured"

    def stopped():
        sts = sts_of(kube, env)
        ws = ws_status(kube, env)
        cond = condition(ws, "PermitActive")
        if sts and sts["spec"]["replicas"] == 0 and cond and cond["status"] == "False":
            return datetime.now(timezone.utc), ws
        return None
    at, ws = wait_for("the server stopped after notAfter", stopped, timeout=remaining + 15, interval=0.1)
    delay = (at - not_after).total_seconds()
    assert delay < 5, f"stopped {delay:.1f}s after notAfter"
    assert condition(ws, "PermitActive")["reason"] == "Expired"
    assert condition(ws, "Ready")["status"] == "False"
    wait_for("the pod gone", lambda: kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0") is None,
             timeout=30)
    wait_phase(kube, env, "Stopped", timeout=30)


def _audit_records(path: str, action: str, target: str) -> list[dict]:
    lines = Path(path).read_text().splitlines() if Path(path).exists() else []
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if r.get("action") == action and r.get("target") == target]


def test_dataset_is_mounted_read_only_from_its_volume(kube, ws_env, operator):
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True, datasets=[env.dataset]))
    ws = wait_phase(kube, env, "Running")
    assert condition(ws, "DatasetsReady")["status"] == "True"
    assert f"/data/{env.dataset}" in condition(ws, "DatasetsReady")["message"]
    claim = kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/persistentvolumeclaims/ds.{env.dataset}.r1")
    assert claim["status"]["phase"] == "Bound"
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    pv = kube.get_or_none(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    ingest = kube.get_or_none(f"/api/v1/namespaces/spe-system/persistentvolumeclaims/dataset-{env.dataset}-r1")
    source = kube.get_or_none(f"/api/v1/persistentvolumes/{ingest['spec']['volumeName']}")
    assert pv["spec"]["hostPath"]["path"] == source["spec"]["hostPath"]["path"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    pod = kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0")
    vol = next(v for v in pod["spec"]["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == f"ds.{env.dataset}.r1")
    assert vol["persistentVolumeClaim"]["readOnly"] is True
    mount = next(m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == vol["name"])
    assert mount == {"name": vol["name"], "mountPath": f"/data/{env.dataset}", "subPath": "data", "readOnly": True}
    (verifier,) = pod["spec"]["initContainers"]
    assert verifier["name"] == f"verify-{env.dataset}" and verifier["command"][:3] == ["spe-ingest", "verify", "/dataset"]
    # The start and the mount are in the operator's audit trail, and the trail verifies.
    target = f"Workspace/{env.namespace}/ws"
    deadline = time.monotonic() + 10
    while not _audit_records(operator.audit_log_path, "dataset.mounted", target):
        assert time.monotonic() < deadline, "no dataset.mounted audit record"
        time.sleep(0.2)
    (mounted,) = _audit_records(operator.audit_log_path, "dataset.mounted", target)
    assert mounted["dataset"] == env.dataset and mounted["permit"] == env.permit
    assert _audit_records(operator.audit_log_path, "workspace.started", target)
    assert verify([operator.audit_log_path]).ok


def test_dataset_not_ready_blocks_with_its_name(kube, ws_env, suffix):
    env = ws_env
    pending = f.dataset(f"pending-{suffix}-{env.permit}")
    kube.create(pending)
    try:
        env.create_permit(datasets=[env.dataset, pending["metadata"]["name"]])
        kube.create(env.workspace(running=True, datasets=[pending["metadata"]["name"]]))
        ws = wait_phase(kube, env, "Blocked")
        cond = condition(ws, "DatasetsReady")
        assert cond["status"] == "False" and pending["metadata"]["name"] in cond["message"]
        assert sts_of(kube, env)["spec"]["replicas"] == 0
        events = kube.items(f"/api/v1/namespaces/{env.namespace}/events")
        assert any(e["type"] == "Warning" and e["involvedObject"]["name"] == "ws" for e in events)
    finally:
        kube.delete_quietly(pending)


def test_unencrypted_storage_class_gets_a_condition_and_no_volume(kube, ws_env):
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True, storage_class="standard"))
    ws = wait_phase(kube, env, "Blocked")
    cond = condition(ws, "VolumesReady")
    assert (cond["status"], cond["reason"]) == ("False", "StorageClassNotEncrypted")
    assert "'standard'" in cond["message"]
    assert kube.items(f"/api/v1/namespaces/{env.namespace}/persistentvolumeclaims", "spe.ehds.io/workspace=ws") == []


def test_drift_is_repaired(kube, ws_env):
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True))
    wait_phase(kube, env, "Running")
    sts_path = f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets/ws"
    # Someone weakens the server's security context and deletes its Service.
    containers = sts_of(kube, env)["spec"]["template"]["spec"]["containers"]
    containers[0]["securityContext"]["readOnlyRootFilesystem"] = False
    containers[0]["securityContext"]["allowPrivilegeEscalation"] = True
    kube.api.call("PATCH", sts_path, {"spec": {"template": {"spec": {
        "containers": [{"name": "notebook", "securityContext": containers[0]["securityContext"]}],
        "securityContext": {"runAsNonRoot": False}}}}}, content_type="application/strategic-merge-patch+json")
    kube.api.delete(f"/api/v1/namespaces/{env.namespace}/services/ws")

    def repaired():
        sts = sts_of(kube, env)
        c = sts["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        pod_sc = sts["spec"]["template"]["spec"]["securityContext"]
        svc = kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/services/ws")
        return (c["readOnlyRootFilesystem"] is True and c["allowPrivilegeEscalation"] is False
                and pod_sc["runAsNonRoot"] is True and svc is not None)
    wait_for("the StatefulSet and Service repaired", repaired, timeout=30)


def test_stop_and_delete_remove_the_server_then_the_children(kube, ws_env):
    env = ws_env
    env.create_permit()
    body = env.workspace(running=True)
    kube.create(body)
    wait_phase(kube, env, "Running")
    kube.patch(ws_path(env.namespace, "ws"), {"spec": {"running": False}})
    ws = wait_phase(kube, env, "Stopped")
    assert condition(ws, "Ready")["reason"] in ("Stopped", "Stopping")
    assert sts_of(kube, env)["spec"]["replicas"] == 0
    kube.delete_quietly(body)
    selector = "spe.ehds.io/workspace=ws"

    def gone():
        left = [*kube.items(f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets", selector),
                *kube.items(f"/api/v1/namespaces/{env.namespace}/services", selector),
                *kube.items(f"/api/v1/namespaces/{env.namespace}/persistentvolumeclaims", selector)]
        return not left
    wait_for("children garbage-collected", gone, timeout=60)


@pytest.mark.slow
def test_idle_server_is_stopped_with_an_event(kube, ws_env):
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True, idle_minutes=1))
    ws = wait_phase(kube, env, "Running")
    # The hub reported activity long ago; the server's start is the later activity.
    old = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch(ws_path(env.namespace, "ws"), {"metadata": {"annotations": {"spe.ehds.io/last-activity": old}}})
    started = datetime.fromisoformat(ws["status"]["startedAt"].replace("Z", "+00:00"))
    wait_for("the idle stop", lambda: (ws_status(kube, env)["spec"]["running"] is False) or None,
             timeout=max(5.0, (started + timedelta(minutes=1) - datetime.now(timezone.utc)).total_seconds() + 10))
    ws = wait_phase(kube, env, "Stopped")
    assert condition(ws, "Ready")["reason"] == "IdleTimeout"
    assert ws["metadata"]["annotations"]["spe.ehds.io/stop-reason"] == "IdleTimeout"
    events = kube.items(f"/api/v1/namespaces/{env.namespace}/events")
    assert any(e["reason"] == "IdleTimeout" for e in events)
