"""PID -> pod UID, from the process's cgroup path (cgroup v1 and v2, cgroupfs and systemd
drivers): ``.../kubepods/burstable/pod<uid>/<container>`` or
``.../kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope``."""

from __future__ import annotations

import re
from pathlib import Path

_POD = re.compile(r"pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})")


def pod_uid_from_cgroup(text: str) -> str | None:
    """The pod UID in a /proc/<pid>/cgroup file's text, or None (not a pod's process)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        if "kubepods" not in path:
            continue
        found = _POD.findall(path)
        if found:
            return found[-1].replace("_", "-").lower()
    return None


def pod_uid_of(pid: int, proc_root: str = "/proc") -> str | None:
    try:
        return pod_uid_from_cgroup((Path(proc_root) / str(pid) / "cgroup").read_text())
    except OSError:  # the process ended, or another PID namespace
        return None
