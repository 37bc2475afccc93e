"""spe-gpu-agent on the local control plane, against the fake libnvidia-ml.so.1: node labels
(GFD's never overwritten), a busy and an idle workspace's status and metrics, the GPU-idle
stop, GPU-hours on the permit, and NVML failures as conditions and Events without a crash
loop. The agent runs as its own process with its ServiceAccount's token (manifests' RBAC)."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
from datetime import datetime, timezone

import pytest
import yaml

from spe_dev.api import HttpError
from tests.fixtures.waiting import wait_for
from tests.workspace.helpers import condition, ws_path

from .conftest import AGENT
from .fakenvml import FakeGpu, agent_env, fake_proc

pytestmark = pytest.mark.gpu

GiB = 2**30
UUID_A = "GPU-aaaaaaaa-0000-4000-8000-000000000001"
UUID_B = "GPU-bbbbbbbb-0000-4000-8000-000000000002"


def node_events(kube, node: str, reason: str) -> list[dict]:
    return [e for e in kube.items("/api/v1/namespaces/default/events")
            if e["involvedObject"].get("name") == node and e["reason"] == reason]


# --- labels -------------------------------------------------------------------------------------

def test_inventory_labels_a_gpu_node_where_missing_and_leaves_gfd_alone(
        cluster, kube, gpu_nodes, gpu_agent_kubeconfig, fake_nvml_dir, scenario):
    sfx = secrets.token_hex(3)
    bare = gpu_nodes(f"spe-gpu-bare-{sfx}", 2, None)
    gfd = gpu_nodes(f"spe-gpu-gfd-{sfx}", 2, None, {"nvidia.com/gfd.timestamp": "1714550000"})
    other = gpu_nodes(f"spe-gpu-other-{sfx}", 2, "NVIDIA-H100-SXM", None)  # product set by someone else
    scenario.gpus = [FakeGpu(name="NVIDIA H100 80GB HBM3", uuid=UUID_A), FakeGpu(name="NVIDIA H100 80GB HBM3", uuid=UUID_B)]
    scenario.write()
    env = agent_env(fake_nvml_dir, scenario.path, KUBECONFIG=gpu_agent_kubeconfig)
    for node in (bare, gfd, other):
        out = subprocess.run([AGENT, "--once", "--node", node["metadata"]["name"]], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert [g["uuid"] for g in json.loads(out.stdout)["inventory"]["gpus"]] == [UUID_A, UUID_B]

    def labels(node):
        return kube.get_or_none(f"/api/v1/nodes/{node['metadata']['name']}")["metadata"]["labels"]
    got = labels(bare)
    assert got["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3" and got["nvidia.com/gpu.count"] == "2"
    got = labels(gfd)
    assert "nvidia.com/gpu.product" not in got and "nvidia.com/gpu.count" not in got  # GFD's business
    got = labels(other)
    assert got["nvidia.com/gpu.product"] == "NVIDIA-H100-SXM"  # never overwritten
    managers = {m["manager"] for m in kube.get_or_none(f"/api/v1/nodes/{bare['metadata']['name']}")["metadata"]["managedFields"]}
    assert "spe-gpu-agent" in managers


def test_the_agents_identity_may_change_only_the_gpu_labels(cluster, gpu_nodes, gpu_agent_kubeconfig):
    node = gpu_nodes(f"spe-gpu-vap-{secrets.token_hex(3)}", 1, None)
    token = yaml.safe_load(open(gpu_agent_kubeconfig))["users"][0]["user"]["token"]
    api = cluster.api(token=token)
    path = f"/api/v1/nodes/{node['metadata']['name']}"
    ok = api.call("PATCH", path, {"metadata": {"labels": {"nvidia.com/gpu.count": "1"}}},
                  content_type="application/merge-patch+json")
    assert ok["metadata"]["labels"]["nvidia.com/gpu.count"] == "1"
    for patch in ({"metadata": {"labels": {"kubernetes.io/hostname": "elsewhere"}}},
                  {"spec": {"unschedulable": True}}):
        with pytest.raises(HttpError) as refused:
            api.call("PATCH", path, patch, content_type="application/merge-patch+json")
        assert refused.value.status in (403, 422) and "spe-gpu-agent may" in refused.value.body
    with pytest.raises(HttpError) as refused:  # and nothing RBAC does not grant
        api.call("DELETE", path)
    assert refused.value.status == 403


# --- workspaces -------------------------------------------------------------------------------

def start_gpu_workspace(kube, env, name: str, model: str, idle_minutes: int) -> str:
    """A running 1-GPU workspace; its pod's UID."""
    kube.create(env.workspace(name, running=True, gpus={"count": 1, "model": model}, idle_minutes=idle_minutes))

    def running():
        ws = kube.get_or_none(ws_path(env.namespace, name))
        return ws if (ws or {}).get("status", {}).get("phase") == "Running" else None
    wait_for(f"workspace {name} Running", running, timeout=120)
    return kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/{name}-0")["metadata"]["uid"]


def gpu_usage(kube, env, name: str) -> dict | None:
    ws = kube.get_or_none(ws_path(env.namespace, name))
    return ((ws or {}).get("status") or {}).get("gpuUsage")


@pytest.fixture
def gpu_env(ws_env, gpu_nodes):
    """A permit whose ceilings allow this test's own GPU model, on a 2-GPU kwok node of that model."""
    model = f"NVIDIA-T{secrets.token_hex(3)}"
    node = gpu_nodes(f"spe-gpu-{model[7:].lower()}", 2, model)
    ws_env.create_permit(gpus=[{"model": model, "count": 2}])
    return ws_env, model, node["metadata"]["name"]


def run_agent(start_agent, fake_nvml_dir, scenario, kubeconfig, node, proc_root, *extra):
    env = agent_env(fake_nvml_dir, scenario.path, KUBECONFIG=kubeconfig, SPE_GPU_MAX_BACKOFF="2")
    return start_agent(["--node", node, "--sample-interval", "1", "--publish-interval", "3",
                        "--proc-root", str(proc_root), *extra], env)


@pytest.fixture
def researcher_active(kube):
    """The hub reporting activity of the researcher in the notebooks every few seconds (the
    annotation the hub writes), so only the GPUs can be idle."""
    stop = threading.Event()
    watched: list[tuple[str, str]] = []

    def report():
        while not stop.wait(5):
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            for namespace, name in list(watched):
                try:
                    kube.patch(ws_path(namespace, name), {"metadata": {"annotations": {
                        "spe.ehds.io/last-activity": now}}})
                except HttpError:
                    pass
    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    yield watched
    stop.set()
    thread.join(timeout=10)


@pytest.mark.slow
def test_busy_and_idle_workspaces_status_metrics_and_the_gpu_idle_stop(
        kube, gpu_env, gpu_agent_kubeconfig, fake_nvml_dir, scenario, start_agent, otlp, tmp_path, researcher_active):
    env, model, node = gpu_env
    researcher_active += [(env.namespace, "busy"), (env.namespace, "idle")]
    busy_uid = start_gpu_workspace(kube, env, "busy", model, idle_minutes=1)
    idle_uid = start_gpu_workspace(kube, env, "idle", model, idle_minutes=1)
    proc = tmp_path / "proc"
    fake_proc(proc, 41001, busy_uid)
    fake_proc(proc, 41002, idle_uid)
    # busy trains on GPU A at 85%; idle imported torch once (a CUDA context, 1 GiB) and stopped there.
    scenario.gpus = [FakeGpu(uuid=UUID_A, memory_used=2 * GiB, util=[(0, 85)], processes=[(41001, 2 * GiB)]),
                     FakeGpu(uuid=UUID_B, memory_used=1 * GiB, util=[(0, 0)], processes=[(41002, 1 * GiB)])]
    scenario.write()
    agent = run_agent(start_agent, fake_nvml_dir, scenario, gpu_agent_kubeconfig, node, proc,
                      "--otlp-endpoint", otlp.url, "--metric-interval", "1")

    busy = wait_for("busy's GPU usage", lambda: gpu_usage(kube, env, "busy"), timeout=30)
    assert busy["state"] == "Measured" and busy["uuids"] == [UUID_A] and busy["devices"] == 1
    assert busy["utilizationPercent"] == 85 and busy["memoryUsed"] == "2Gi" and "idleSince" not in busy
    idle = wait_for("idle's GPU usage", lambda: gpu_usage(kube, env, "idle"), timeout=30)
    assert idle["uuids"] == [UUID_B] and idle["utilizationPercent"] == 0 and idle["memoryUsed"] == "1Gi"
    assert idle["idleSince"] and idle["thresholdPercent"] == 5
    ws = kube.get_or_none(ws_path(env.namespace, "idle"))
    assert condition(ws, "GpuTelemetry")["status"] == "True"
    assert "under 5% utilisation since" in condition(ws, "GpuTelemetry")["message"]

    # OpenTelemetry, per GPU and per workspace
    wait_for("metrics", lambda: otlp.latest("spe.workspace.gpu.utilization", **{"spe.workspace": "idle"}) is not None,
             timeout=30)
    assert otlp.latest("spe.gpu.utilization", **{"gpu.uuid": UUID_A}) == 85
    assert otlp.latest("spe.gpu.memory.used", **{"gpu.uuid": UUID_B}) == GiB
    assert otlp.latest("spe.workspace.gpu.utilization", **{"spe.workspace": "busy", "spe.permit": env.permit}) == 85
    assert otlp.latest("spe.workspace.gpu.utilization", **{"spe.workspace": "idle"}) == 0
    assert otlp.latest("spe.workspace.gpu.memory.used", **{"spe.workspace": "busy"}) == 2 * GiB

    # GPU-hours: on the workspace, then summed on the permit
    wait_for("busy's GPU-hours", lambda: (gpu_usage(kube, env, "busy") or {}).get("gpuHours", 0) > 0, timeout=30)

    def permit_hours():
        permit = kube.get_or_none(f"/apis/spe.ehds.io/v1alpha1/datapermits/{env.permit}")
        return ((permit or {}).get("status") or {}).get("gpuHours")
    assert wait_for("the permit's GPU-hours", permit_hours, timeout=30) > 0

    # The idle one is stopped one idle timeout after its start, saying "GPU idle"; the busy one runs on.
    started = datetime.fromisoformat(ws["status"]["startedAt"].replace("Z", "+00:00"))
    left = (started.timestamp() + 60) - datetime.now(timezone.utc).timestamp()
    wait_for("the GPU-idle stop", lambda: kube.get_or_none(ws_path(env.namespace, "idle"))["spec"]["running"] is False,
             timeout=max(10.0, left + 20))
    ws = wait_for("idle Stopped", lambda: (lambda w: w if w["status"].get("phase") == "Stopped" else None)(
        kube.get_or_none(ws_path(env.namespace, "idle"))), timeout=30)
    ready = condition(ws, "Ready")
    assert ready["reason"] == "GpuIdle" and "GPU idle" in ready["message"] and "under 5%" in ready["message"]
    assert ws["metadata"]["annotations"]["spe.ehds.io/stop-reason"] == "GpuIdle"
    events = [e for e in kube.items(f"/api/v1/namespaces/{env.namespace}/events")
              if e["involvedObject"]["name"] == "idle"]
    assert any(e["reason"] == "GpuIdle" and "GPU idle" in e["message"] for e in events)
    assert any(e["reason"] == "Stopped" and "GPU idle" in e["message"] for e in events)
    busy_ws = kube.get_or_none(ws_path(env.namespace, "busy"))
    assert busy_ws["spec"]["running"] is True and busy_ws["status"]["phase"] == "Running"
    assert agent.alive()


def test_gpu_lost_and_no_driver_are_conditions_and_events_not_a_crash_loop(
        kube, gpu_env, gpu_agent_kubeconfig, fake_nvml_dir, scenario, start_agent, tmp_path):
    env, model, node = gpu_env
    uid = start_gpu_workspace(kube, env, "ws", model, idle_minutes=120)
    proc = tmp_path / "proc"
    fake_proc(proc, 42001, uid)
    scenario.gpus = [FakeGpu(uuid=UUID_A, util=[(0, 40)], processes=[(42001, GiB)]), FakeGpu(uuid=UUID_B)]
    scenario.write()
    agent = run_agent(start_agent, fake_nvml_dir, scenario, gpu_agent_kubeconfig, node, proc)
    wait_for("Measured", lambda: (gpu_usage(kube, env, "ws") or {}).get("state") == "Measured", timeout=30)

    # The GPU falls off the bus.
    scenario.gpus[0].lost = True
    scenario.write()
    wait_for("GpuLost", lambda: (gpu_usage(kube, env, "ws") or {}).get("state") == "GpuLost", timeout=30)
    ws = kube.get_or_none(ws_path(env.namespace, "ws"))
    cond = condition(ws, "GpuTelemetry")
    assert cond["status"] == "False" and cond["reason"] == "GpuLost"
    assert "NVML_ERROR_GPU_IS_LOST" in cond["message"] and "drain the node" in cond["message"]
    assert "idleSince" not in ws["status"]["gpuUsage"]
    lost = wait_for("a GpuLost Event on the node", lambda: node_events(kube, node, "GpuLost"), timeout=15)
    assert lost[0]["type"] == "Warning"
    assert agent.alive()
    agent.stop()

    # A node whose driver is not loaded: reported, retried with backoff, never a crash.
    scenario.gpus[0].lost = False
    scenario.init = 9
    scenario.write()
    agent = run_agent(start_agent, fake_nvml_dir, scenario, gpu_agent_kubeconfig, node, proc)
    wait_for("Unavailable", lambda: (gpu_usage(kube, env, "ws") or {}).get("state") == "Unavailable", timeout=30)
    cond = condition(kube.get_or_none(ws_path(env.namespace, "ws")), "GpuTelemetry")
    assert cond["status"] == "False" and cond["reason"] == "NvmlUnavailable" and "driver is not loaded" in cond["message"]
    wait_for("a NvmlUnavailable Event on the node", lambda: node_events(kube, node, "NvmlUnavailable"), timeout=15)
    wait_for("retries", lambda: agent.log().count("retry in") >= 2, timeout=30)
    assert agent.alive() and "Traceback" not in agent.log()
    assert len(node_events(kube, node, "NvmlUnavailable")) == 1  # once per transition, not per retry

    # The driver comes back: measured again, without a restart.
    scenario.init = 0
    scenario.write()
    wait_for("Measured again", lambda: (gpu_usage(kube, env, "ws") or {}).get("state") == "Measured", timeout=30)
    assert condition(kube.get_or_none(ws_path(env.namespace, "ws")), "GpuTelemetry")["status"] == "True"
    assert agent.alive()
