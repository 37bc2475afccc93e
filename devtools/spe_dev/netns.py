"""Network namespaces, links and routes of the real node (thin wrappers over `ip`).

Named network namespaces (`ip netns add`) are machine-wide; their names carry the home's tag.
Processes enter one with setns(2) in the child before exec (``enter_netns``), like `nsenter
--net`: unlike `ip netns exec` this keeps the mount namespace, so the kubelet's volume mounts
stay visible to containerd.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from pathlib import Path
from typing import Callable

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


class NetError(RuntimeError):
    pass


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetError(f"`{' '.join(argv)}` failed: {proc.stderr.strip()}")
    return proc


def ip_json(*args: str, netns: str | None = None) -> list[dict]:
    out = ip("-j", *args, netns=netns).stdout.strip()
    return json.loads(out) if out else []


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def enter_netns(name: str) -> Callable[[], None]:
    """A preexec_fn that moves the child into network namespace ``name``."""
    path = str(netns_path(name))

    def _enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns({path})")
        finally:
            os.close(fd)

    return _enter


def run_in(name: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` inside network namespace ``name`` (output captured, text)."""
    return subprocess.run(argv, preexec_fn=enter_netns(name), capture_output=True, text=True, **kwargs)


def link_exists(name: str, netns: str | None = None) -> bool:
    return ip("link", "show", "dev", name, netns=netns, check=False).returncode == 0


def addresses(netns: str | None = None) -> list[tuple[str, str]]:
    """(interface, address/prefix) of every IPv4 and IPv6 address in a namespace."""
    out = []
    for link in ip_json("addr", "show", netns=netns):
        for a in link.get("addr_info", []):
            out.append((link["ifname"], f"{a['local']}/{a['prefixlen']}"))
    return out


def routes(netns: str | None = None, family: str = "-4") -> list[dict]:
    """Every route of a namespace, all tables (the `ip -j route show table all` objects)."""
    return ip_json(family, "route", "show", "table", "all", netns=netns)


def namespaces() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir())


def read_sysctl(name: str, netns: str | None = None) -> str:
    path = "/proc/sys/" + name.replace(".", "/")
    if netns is None:
        return Path(path).read_text().strip()
    return run_in(netns, ["cat", path], check=True).stdout.strip()
