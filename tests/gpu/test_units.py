"""The pure parts of GPU telemetry, table-driven: cgroup -> pod, attribution, the idle run and
GPU-hours, the rate limit, node labels (GFD first), the GPU-idle decision, the permit's ledger."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from spe_api import GpuTelemetryState, GpuUsage, Workspace, WorkspaceGpuHours
from spe_gpu_agent import labels, usage
from spe_gpu_agent.attribution import WorkspacePod, attribute
from spe_gpu_agent.cgroup import pod_uid_from_cgroup
from spe_gpu_agent.nvml import Gpu, GpuProcess, Inventory, MigInstance
from spe_operator.permits.status import gpu_ledger
from spe_operator.workspaces import gpu_idle

pytestmark = pytest.mark.gpu

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
UID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


@pytest.mark.parametrize("text, uid", [
    (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/"
     "cri-containerd-abc.scope\n", UID),
    (f"12:memory:/kubepods/besteffort/pod{UID}/0123abcd\n11:cpu:/kubepods/besteffort/pod{UID}/0123abcd\n", UID),
    (f"0::/kubepods/pod{UID.upper()}/ctr\n", UID),
    ("0::/system.slice/containerd.service\n", None),
    ("0::/user.slice/user-1000.slice/session-1.scope\n", None),
    ("", None),
])
def test_pod_uid_from_cgroup(text, uid):
    assert pod_uid_from_cgroup(text) == uid


def _inv(*gpus: Gpu) -> Inventory:
    return Inventory(driver="550", gpus=gpus)


def _pod(uid="p1", gpus=1, ws="ws") -> WorkspacePod:
    return WorkspacePod("spe-t", ws, "t", uid, gpus)


def test_attribution_maps_processes_to_their_workspace():
    inv = _inv(Gpu(0, "GPU-a", "NVIDIA L40S", 100, 10, 80, processes=(GpuProcess(11, 7), GpuProcess(12, 3))),
               Gpu(1, "GPU-b", "NVIDIA L40S", 100, 0, 0, processes=(GpuProcess(21, 5),)),
               Gpu(2, "GPU-c", "NVIDIA L40S", 100, 0, 90, processes=(GpuProcess(99, 1),)))
    out = attribute(inv, {11: "p1", 12: "p1", 21: "p2"}, [_pod("p1", 2), _pod("p2", 1, "other"), _pod("p3", 0)], T0)
    assert set(out) == {"p1", "p2"}  # p3 holds no GPU; PID 99 is no workspace's
    p1, p2 = out["p1"], out["p2"]
    assert p1.uuids == ("GPU-a",) and p1.memory_used == 10 and p1.memory_total == 100
    assert p1.utilization == 40 and p1.peak == 80  # mean over the 2 GPUs it holds; one unused
    assert p2.utilization == 0 and p2.peak == 0


def test_a_workspace_without_gpu_processes_is_idle_and_mig_is_unmeasurable():
    mig = MigInstance("MIG-1", 24, processes=(GpuProcess(5, 4),))
    inv = _inv(Gpu(0, "GPU-m", "NVIDIA A30", 96, 0, None, mig_enabled=True, mig=(mig,),
                   processes=(GpuProcess(5, 4),)))
    out = attribute(inv, {5: "p1"}, [_pod("p1"), _pod("p2")], T0)
    assert out["p2"].peak == 0 and out["p2"].uuids == ()
    assert out["p1"].peak is None  # never counted idle
    # the parent lists the instance's process as well: it is the instance's, counted once
    assert out["p1"].uuids == ("MIG-1",) and out["p1"].memory_used == 4 and out["p1"].memory_total == 24


def _sample(peak, t, gpus=1):
    pod = _pod(gpus=gpus)
    return attribute(_inv(Gpu(0, "GPU-a", "X", 100, 0, peak, processes=(GpuProcess(1, 0),))), {1: "p1"}, [pod],
                     t)["p1"]


def test_idle_run_and_gpu_hours():
    track = usage.Track()
    track = usage.step(track, _sample(50, T0, gpus=2), threshold=5)
    assert track.idle_since is None and track.gpu_hours == 0
    track = usage.step(track, _sample(3, T0 + timedelta(minutes=30), gpus=2), threshold=5)
    assert track.idle_since == T0 + timedelta(minutes=30)
    assert track.gpu_hours == pytest.approx(1.0)  # 2 GPUs x 30 minutes
    track = usage.step(track, _sample(4, T0 + timedelta(minutes=60), gpus=2), threshold=5)
    assert track.idle_since == T0 + timedelta(minutes=30)  # the run goes on
    track = usage.step(track, _sample(5, T0 + timedelta(minutes=61), gpus=2), threshold=5)
    assert track.idle_since is None  # at the threshold is busy


def test_summary_is_the_status_shape():
    track = usage.step(usage.Track(), _sample(2, T0), threshold=5)
    s = usage.summary(track, _sample(2, T0), 5)
    assert s.state == GpuTelemetryState.MEASURED and s.idle_since == T0 and s.threshold_percent == 5
    assert s.to_dict()["idleSince"] == "2026-05-01T12:00:00Z"


@pytest.mark.parametrize("change, after_s, publish", [
    ({}, 10, False),                                  # nothing new, inside the interval
    ({}, 60, True),                                   # the interval passed
    ({"idle_since": T0}, 1, True),                    # turned idle: at once
    ({"state": GpuTelemetryState.GPU_LOST}, 1, True),  # cannot measure any more: at once
    ({"uuids": ["GPU-b"]}, 1, True),
    ({"utilization_percent": 99}, 1, False),           # a busier GPU waits for the interval
])
def test_rate_limit(change, after_s, publish):
    old = GpuUsage(state=GpuTelemetryState.MEASURED, sampled_at=T0, devices=1, uuids=["GPU-a"], threshold_percent=5,
                   utilization_percent=50)
    new = old.model_copy(update=change)
    track = usage.Track(published=old, published_at=T0)
    assert usage.should_publish(track, new, T0 + timedelta(seconds=after_s), 60) is publish
    assert usage.should_publish(usage.Track(), new, T0, 60) is True


def test_resume_keeps_hours_and_a_fresh_idle_run_only():
    prev = GpuUsage(state=GpuTelemetryState.MEASURED, sampled_at=T0, devices=1, threshold_percent=5,
                    idle_since=T0 - timedelta(hours=1), gpu_hours=12.5)
    assert usage.resume(prev, T0 + timedelta(minutes=1)).idle_since == T0 - timedelta(hours=1)
    stale = usage.resume(prev, T0 + timedelta(hours=1))
    assert stale.idle_since is None and stale.gpu_hours == 12.5


def _node(labels_: dict, managed: list[tuple[str, list[str]]] = ()) -> dict:
    return {"metadata": {"name": "n1", "labels": labels_, "managedFields": [
        {"manager": m, "operation": "Apply", "fieldsV1": {"f:metadata": {"f:labels": {f"f:{k}": {} for k in ks}}}}
        for m, ks in managed]}}


INV = _inv(Gpu(0, "GPU-a", "NVIDIA H100 80GB HBM3", 1, 0, 0), Gpu(1, "GPU-b", "NVIDIA H100 80GB HBM3", 1, 0, 0))


@pytest.mark.parametrize("node, expected", [
    (_node({}), {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "2"}),
    # GFD installed: nothing, whatever is missing
    (_node({"nvidia.com/gfd.timestamp": "1714550000"}), None),
    # someone else's label is kept; only the missing one is added
    (_node({"nvidia.com/gpu.product": "NVIDIA-H100"}, [("gpu-feature-discovery", ["nvidia.com/gpu.product"])]),
     {"nvidia.com/gpu.count": "2"}),
    # our own label is kept up to date
    (_node({"nvidia.com/gpu.product": "NVIDIA-A30", "nvidia.com/gpu.count": "2"},
           [("spe-gpu-agent", ["nvidia.com/gpu.product", "nvidia.com/gpu.count"])]),
     {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "2"}),
    # already right: no write
    (_node({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "2"},
           [("spe-gpu-agent", ["nvidia.com/gpu.product", "nvidia.com/gpu.count"])]), None),
])
def test_node_labels(node, expected):
    body = labels.label_apply(node, INV)
    assert (body["metadata"]["labels"] if body else None) == expected


def _ws(running=True, gpus=1, minutes=60, usage_: GpuUsage | None = None) -> Workspace:
    spec = {"permit": "p", "members": ["a@example.org"], "tool": "jupyterlab", "idleTimeoutMinutes": minutes,
            "running": running, "resources": {"gpus": {"count": gpus, "model": "NVIDIA-L40S"}} if gpus else {}}
    ws = Workspace.from_manifest({"metadata": {"name": "w", "namespace": "spe-p", "uid": "u1"}, "spec": spec})
    ws.status.gpu_usage = usage_
    return ws


def _usage(idle_since, sampled_at, state=GpuTelemetryState.MEASURED, hours=0.0):
    return GpuUsage(state=state, sampled_at=sampled_at, devices=1, threshold_percent=5, idle_since=idle_since,
                    gpu_hours=hours)


STARTED = T0


@pytest.mark.parametrize("ws, now, idle", [
    (_ws(usage_=_usage(T0, T0 + timedelta(minutes=59))), T0 + timedelta(minutes=59), False),   # not yet
    (_ws(usage_=_usage(T0, T0 + timedelta(minutes=60))), T0 + timedelta(minutes=60), True),    # the timeout
    (_ws(usage_=_usage(T0 - timedelta(hours=5), T0 + timedelta(minutes=1))), T0 + timedelta(minutes=30), False),
    (_ws(usage_=_usage(None, T0 + timedelta(hours=2))), T0 + timedelta(hours=2), False),       # busy
    (_ws(usage_=_usage(T0, T0 + timedelta(minutes=10))), T0 + timedelta(hours=2), False),      # agent gone quiet
    (_ws(usage_=_usage(T0, T0 + timedelta(hours=2), GpuTelemetryState.GPU_LOST)), T0 + timedelta(hours=2), False),
    (_ws(usage_=_usage(T0 - timedelta(hours=3), T0 - timedelta(hours=2))), T0 + timedelta(hours=2), False),  # old run
    (_ws(gpus=0, usage_=_usage(T0, T0 + timedelta(hours=2))), T0 + timedelta(hours=2), False),
    (_ws(minutes=0, usage_=_usage(T0, T0 + timedelta(hours=2))), T0 + timedelta(hours=2), False),
    (_ws(running=False, usage_=_usage(T0, T0 + timedelta(hours=2))), T0 + timedelta(hours=2), False),
    (_ws(), T0 + timedelta(hours=2), False),                                                    # no agent
])
def test_gpu_idle_decision(ws, now, idle):
    assert gpu_idle.is_gpu_idle(ws, STARTED, now, max_age_s=300) is idle


def test_gpu_idle_deadline_counts_from_the_start_at_the_earliest():
    ws = _ws(usage_=_usage(T0 - timedelta(hours=5), T0 + timedelta(minutes=1)))
    assert gpu_idle.gpu_idle_deadline(ws, STARTED) == T0 + timedelta(minutes=60)


def test_permit_gpu_ledger_keeps_deleted_workspaces_and_only_grows():
    a = _ws(usage_=_usage(None, T0, hours=2.0))
    b = _ws(usage_=_usage(None, T0, hours=1.5))
    b.metadata.uid, b.metadata.name = "u2", "w2"
    ledger = gpu_ledger([], [a, b])
    assert {(e.workspace, e.hours) for e in ledger} == {("w", 2.0), ("w2", 1.5)}
    # w2 deleted, w reports less (a restarted agent that lost its count): the ledger keeps both
    a.status.gpu_usage = _usage(None, T0, hours=0.5)
    ledger = gpu_ledger(ledger, [a])
    assert {(e.workspace, e.hours) for e in ledger} == {("w", 2.0), ("w2", 1.5)}
    assert gpu_ledger([WorkspaceGpuHours(workspace="old", uid="u0", hours=3)], [])[0].hours == 3


async def test_the_reconciler_wakes_at_the_gpu_idle_deadline_and_never_spins_on_a_stale_one():
    from spe_api import WorkspacePhase
    from spe_operator.settings import SpeSettings
    from spe_operator.workspaces.controller import WorkspaceController

    ctl = WorkspaceController(kube=None, settings=SpeSettings())
    key = ("spe-p", "w")
    ws = _ws(minutes=600, usage_=_usage(T0, T0 + timedelta(minutes=1)))
    ws.metadata.annotations["spe.ehds.io/last-activity"] = (T0 + timedelta(hours=9)).isoformat()
    new = ws.status.model_copy(update={"phase": WorkspacePhase.RUNNING, "started_at": T0})
    ctl._schedule_deadlines(key, ws, new, None, T0 + timedelta(minutes=30))
    assert ctl._queue.timer(key) is not None  # at T0 + 600 min, the GPU-idle deadline
    assert ctl._queue.timer(key).when() - asyncio.get_running_loop().time() == pytest.approx(570 * 60, abs=5)
    # Past the deadline with a stale summary (the agent went quiet): no stop, and no re-run at once.
    ctl._schedule_deadlines(key, ws, new, None, T0 + timedelta(minutes=601))
    # only the ordinary idle deadline is left (the researcher's activity at T0 + 9 h, + 600 min)
    assert ctl._queue.timer(key).when() - asyncio.get_running_loop().time() == pytest.approx(539 * 60, abs=5)
    await ctl.stop()
