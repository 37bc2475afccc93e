"""The device check: spe-gpu-agent once against the real NVML of a machine with an NVIDIA GPU
(``bench/gpu/nvml_check.sh`` does the same from the shell). Skipped, with the reason, where
there is none. It never loads the tests' fake library: LD_LIBRARY_PATH is cleared, and the
library it loaded must not be the fake one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import AGENT

pytestmark = pytest.mark.gpu


def _real_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "FAKE_NVML_SCENARIO")}


def test_agent_reads_the_real_gpus():
    if not Path("/dev/nvidiactl").exists():
        pytest.skip("no NVIDIA GPU on this machine (/dev/nvidiactl absent): device check not run")
    out = subprocess.run([AGENT, "--once", "--no-kube", "--samples", "3"], env=_real_env(), capture_output=True,
                         text=True, timeout=120)
    report = json.loads(out.stdout)
    if out.returncode == 3:
        pytest.skip(f"a GPU device exists but NVML is not usable here: {report['message']}")
    print(json.dumps(report, indent=2))  # the figures, for the report (-s)
    assert out.returncode == 0, out.stderr
    assert report["library"] and "fake-nvml" not in report["library"]
    assert report["driver"] and report["gpus"]
    for gpu in report["gpus"]:
        if gpu["lost"]:
            continue
        assert gpu["uuid"].startswith("GPU-") and gpu["model"]
        assert gpu["memoryTotal"] > 0 and 0 <= gpu["memoryUsed"] <= gpu["memoryTotal"]
        if not gpu["migEnabled"]:
            assert 0 <= gpu["utilizationPercent"] <= 100
    assert len(report["samples"]) == 3
