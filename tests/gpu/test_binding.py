"""spe-gpu-agent against the fake libnvidia-ml.so.1 through the real binding (nvidia-ml-py
dlopens it exactly as the driver's: found on LD_LIBRARY_PATH), no cluster: inventory, MIG,
and NVML's failures as clear messages."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import AGENT
from .fakenvml import FakeGpu, agent_env

pytestmark = pytest.mark.gpu

L40S = "GPU-5c3b1a2e-7d4f-4e1a-9b0c-0123456789ab"
A30 = "GPU-a30a30a3-0000-4000-8000-000000000030"


def once(env: dict[str, str]) -> tuple[int, dict]:
    out = subprocess.run([AGENT, "--once", "--no-kube", "--samples", "2"], env=env, capture_output=True,
                         text=True, timeout=60)
    return out.returncode, json.loads(out.stdout)


def test_inventory_through_the_real_binding(fake_nvml_dir, scenario):
    scenario.gpus = [
        FakeGpu(name="NVIDIA L40S", uuid=L40S, memory_total=48 * 2**30, memory_used=3 * 2**30,
                util=[(0, 37)], processes=[(4242, 3 * 2**30)]),
        FakeGpu(name="NVIDIA A30", uuid=A30, memory_total=24 * 2**30, mig=True,
                mig_devices=[("MIG-11111111-2222-3333-4444-555555555555", 6 * 2**30),
                             ("MIG-66666666-7777-8888-9999-000000000000", 6 * 2**30)],
                mig_processes=[(1, 5151, 2 * 2**30)]),
    ]
    scenario.write()
    rc, report = once(agent_env(fake_nvml_dir, scenario.path))
    assert rc == 0
    assert report["library"].startswith(str(fake_nvml_dir))  # the binding loaded our library
    assert report["driver"] == "550.54.15"
    l40s, a30 = report["gpus"]
    assert (l40s["model"], l40s["uuid"], l40s["memoryTotal"], l40s["memoryUsed"]) == \
        ("NVIDIA L40S", L40S, 48 * 2**30, 3 * 2**30)
    assert l40s["utilizationPercent"] == 37 and l40s["migEnabled"] is False
    assert l40s["processes"] == [{"pid": 4242, "memoryUsed": 3 * 2**30}]
    assert a30["migEnabled"] is True and a30["utilizationPercent"] is None  # NVML has none in MIG mode
    assert [m["memoryTotal"] for m in a30["migInstances"]] == [6 * 2**30, 6 * 2**30]
    assert [m["processes"] for m in a30["migInstances"]] == [[], [{"pid": 5151, "memoryUsed": 2 * 2**30}]]
    assert [s["utilizationPercent"][L40S] for s in report["samples"]] == [37, 37]


def test_utilisation_follows_the_scenario_timeline(fake_nvml_dir, scenario):
    import time
    scenario.epoch = time.time() - 100
    scenario.gpus = [FakeGpu(uuid=L40S, util=[(0, 5), (90, 60), (10_000, 0)])]
    scenario.write()
    rc, report = once(agent_env(fake_nvml_dir, scenario.path))
    assert rc == 0 and report["gpus"][0]["utilizationPercent"] == 60


def test_a_lost_gpu_is_reported_and_the_others_still_read(fake_nvml_dir, scenario):
    scenario.gpus = [FakeGpu(uuid=L40S, lost=True), FakeGpu(uuid=A30, name="NVIDIA A30", util=[(0, 12)])]
    scenario.write()
    rc, report = once(agent_env(fake_nvml_dir, scenario.path))
    assert rc == 0
    lost, ok = report["gpus"]
    assert lost["lost"] is True and "NVML_ERROR_GPU_IS_LOST" in lost["error"] and "drain the node" in lost["error"]
    assert ok["uuid"] == A30 and ok["utilizationPercent"] == 12


def test_no_driver_is_a_clear_message_not_a_traceback(fake_nvml_dir, scenario):
    scenario.init = 9  # NVML_ERROR_DRIVER_NOT_LOADED
    scenario.write()
    out = subprocess.run([AGENT, "--once", "--no-kube"], env=agent_env(fake_nvml_dir, scenario.path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    assert report["error"] == "NvmlUnavailable" and "driver is not loaded" in report["message"]


def test_no_library_is_a_clear_message(scenario, tmp_path):
    env = agent_env(tmp_path, scenario.path)  # a directory without libnvidia-ml.so.1
    env["LD_LIBRARY_PATH"] = str(tmp_path)
    out = subprocess.run([AGENT, "--once", "--no-kube"], env=env, capture_output=True, text=True, timeout=60)
    if out.returncode == 0:
        pytest.skip("this machine has a real libnvidia-ml.so.1 on its library path")
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert "libnvidia-ml.so.1 was not found" in json.loads(out.stdout)["message"]
