"""What a kubelet changes outside its own directories, put back by the last node to stop.

A kubelet sets machine-wide sysctls at start (vm.overcommit_memory, kernel.panic, ...: its
protectKernelDefaults=true would refuse to start instead) and writes to a few hard-coded paths
(/var/lib/kubelet/device-plugins, /var/log/containers, the CNI cache in /var/lib/cni, the
containerd shims' sockets in /run/containerd). Several spe-dev homes may run a real node on one
machine at once (the test suite beside a developer's cluster), so the first node to start
records the original sysctl values and which of those paths did not exist, every node
registers itself, and the last one to stop restores the values and removes those paths.
The record lives in /run/spe-dev (tmpfs: gone at reboot, like the changes themselves).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from .procs import pid_alive

STATE_DIR = Path(os.environ.get("SPE_DEV_HOST_STATE", "/run/spe-dev"))

KUBELET_SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
)
HARD_CODED_PATHS = (
    "/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd",
)


@contextlib.contextmanager
def _locked() -> Iterator[dict]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        path = STATE_DIR / "nodes.json"
        try:
            state = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        try:
            yield state
        finally:
            if state.get("holders"):
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state, indent=2))
                tmp.replace(path)
            else:
                path.unlink(missing_ok=True)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prune(state: dict) -> None:
    holders = state.get("holders", {})
    for home, pid in list(holders.items()):
        if pid and not pid_alive(pid):
            del holders[home]


def register(home: Path) -> None:
    """Before a kubelet starts: record the machine's state if no other node runs."""
    with _locked() as state:
        _prune(state)
        if not state.get("holders"):
            state["sysctls"] = {k: Path("/proc/sys", k).read_text().strip() for k in KUBELET_SYSCTLS}
            state["created"] = [p for p in HARD_CODED_PATHS if not os.path.lexists(p)]
        state.setdefault("holders", {})[str(home)] = 0


def set_holder_pid(home: Path, pid: int) -> None:
    with _locked() as state:
        state.setdefault("holders", {})[str(home)] = pid


def release(home: Path) -> list[str]:
    """After a node stopped: the last one out restores the sysctls and removes the paths; the
    list says what it put back."""
    done: list[str] = []
    with _locked() as state:
        state.get("holders", {}).pop(str(home), None)
        _prune(state)
        if state.get("holders"):
            return done
        for key, value in state.get("sysctls", {}).items():
            path = Path("/proc/sys", key)
            try:
                if path.read_text().strip() != value:
                    path.write_text(value)
                    done.append(f"{key}={value}")
            except OSError as err:
                done.append(f"{key}: not restored ({err})")
        for p in state.get("created", []):
            if os.path.lexists(p):
                shutil.rmtree(p, ignore_errors=True)
                done.append(f"removed {p}")
        state.clear()
    with contextlib.suppress(OSError):
        (STATE_DIR / "lock").unlink()
        STATE_DIR.rmdir()
    return done


def holders() -> dict[str, int]:
    path = STATE_DIR / "nodes.json"
    try:
        return dict(json.loads(path.read_text()).get("holders", {}))
    except (FileNotFoundError, ValueError):
        return {}
