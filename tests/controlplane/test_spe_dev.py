"""`spe-dev up` is idempotent and `spe-dev down` leaves nothing behind.

Runs a second, private control plane in its own SPE_DEV_HOME on other ports, so the session's
cluster (and anybody else's) is untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from spe_dev.procs import processes_mentioning
from spe_dev.settings import DEFAULT_PORTS, Settings, repo_root

pytestmark = pytest.mark.controlplane


def _free_offset() -> int:
    """A port offset at which every spe-dev port is free on 127.0.0.1."""
    # Start somewhere that depends on our pid, so two sessions running this test at once
    # (other engineers, other checkouts) are unlikely to race for the same ports.
    first = os.getpid() % 25
    for offset in [300 + 100 * ((first + i) % 25) for i in range(25)]:
        ok = True
        for port in DEFAULT_PORTS.values():
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port + offset)) == 0:
                    ok = False
                    break
        if ok:
            return offset
    raise AssertionError("no free port offset for a second control plane")


def _spe_dev(env: dict[str, str], *args: str, timeout: float = 360) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spe_dev", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _pids(output: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"([\w-]+)=(\d+)", output)}


def test_up_is_idempotent_and_down_leaves_no_process(cluster):
    home = repo_root() / ".cache" / f"spe-dev-lifecycle-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPE_DEV_")}
    # The control plane's lifecycle, kwok only: tests/node/test_safety.py does the same with the
    # real node.
    env.update(SPE_DEV_HOME=str(home), SPE_DEV_PORT_OFFSET=str(_free_offset()), SPE_DEV_READY_TIMEOUT="300",
               SPE_DEV_REAL_NODE="0")
    try:
        t0 = time.monotonic()
        first = _spe_dev(env, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        print(f"spe-dev up (fresh home) took {time.monotonic() - t0:.1f}s")
        kubeconfig = Settings.from_env(env).admin_kubeconfig
        assert f"export KUBECONFIG={kubeconfig}" in first.stdout.splitlines()

        second = _spe_dev(env, "up", timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout
        assert f"export KUBECONFIG={kubeconfig}" in second.stdout.splitlines()
        assert "started" not in second.stdout  # nothing new was started
        running = _pids(second.stdout.splitlines()[0])
        assert set(running) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

        status = _spe_dev(env, "status", timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr

        kubectl = _spe_dev(env, "kubectl", "get", "nodes", "-o", "name", timeout=60)
        assert kubectl.returncode == 0, kubectl.stderr
        assert "node/spe-gpu-l40s" in kubectl.stdout.split()

        down = _spe_dev(env, "down", timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        for pid in running.values():
            assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), f"pid {pid} still running"
        assert processes_mentioning(str(home)) == []

        again = _spe_dev(env, "down", timeout=60)
        assert again.returncode == 0 and "nothing was running" in again.stdout
    finally:
        _spe_dev(env, "down", timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
