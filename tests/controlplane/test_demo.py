"""`make demo`'s script, end to end, on a control plane of its own (SPE_DEMO_ONCE=1 stops it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
DEMO_PORT_OFFSET = "300"  # clear of the dev cluster (0), the test cluster (100) and spe-dev's own test (200)


def test_demo_brings_up_the_spe_and_stops_cleanly(tmp_path):
    # A short home: the real node's kubelet binds unix sockets below it (at most 104 bytes).
    home = Path(tempfile.mkdtemp(prefix="spe-demo-", dir="/tmp")) / "home"
    # The demo's real node starts without the project's images (importing them into a fresh
    # containerd takes a minute and the demo's examples do not run them).
    env = {**os.environ, "SPE_DEV_HOME": str(home), "SPE_DEV_PORT_OFFSET": DEMO_PORT_OFFSET,
           "SPE_DEMO_ONCE": "1", "SPE_WEBHOOK_PORT": "19743", "SPE_IMAGES_CACHE": str(tmp_path / "no-images")}
    env.pop("KUBECONFIG", None)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=420)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    # The examples went in, in dependency order, and the operator made the permit's namespace.
    assert "tool.spe.ehds.io/jupyterlab-monai" in out, out[-4000:]
    assert "datapermit.spe.ehds.io/" in out and "workspace.spe.ehds.io/" in out, out[-4000:]
    assert "spe-" in out and "Active" in out, out[-4000:]
    assert any(line.startswith("export KUBECONFIG=") for line in result.stdout.splitlines())
    # ... and everything it started is gone again.
    pids = list((home / "run").glob("*.pid")) if (home / "run").exists() else []
    left = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes of the demo still running: {left} (pid files: {pids})"
    shutil.rmtree(home.parent, ignore_errors=True)
