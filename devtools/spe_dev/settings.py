"""Where spe-dev keeps its state and binaries, and which loopback ports it uses.

One typed settings object, built from the environment when a command starts (never at
import time) and passed down.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

LOOPBACK = "127.0.0.1"

# The files whose content keys the control-plane build; keep in step with
# tests/controlplane/build.sh (same files, same order).
BUILD_KEY_FILES = (
    "kube/go.mod", "kube/go.sum", "kube/main.go",
    "etcd/go.mod", "etcd/go.sum", "etcd/main.go",
    "kwok/go.mod", "kwok/go.sum", "kwok/tools.go",
    "build.sh",
)

# Default ports, all on 127.0.0.1. Each has an environment override (SPE_DEV_<NAME>_PORT), and
# SPE_DEV_PORT_OFFSET shifts all defaults at once (handy for a second cluster beside the first).
DEFAULT_PORTS = {
    "etcd": 32379,
    "etcd_peer": 32380,
    "apiserver": 36443,
    "controller_manager": 30257,
    "scheduler": 30259,
    "kwok": 30250,
}

# Address plan. Everything any process could dial stays in 127.0.0.0/8:
#   127.0.0.1      bind address of every component, kwok's default node IP
#   127.0.1.N      InternalIP of fake node N
#   127.1.N.0/24   podCIDR of fake node N (kwok hands pod IPs out of it)
#   127.1.0.0/24   kwok's fallback pod CIDR, for a node without podCIDR
#   127.2.0.0/16   service ClusterIPs
SERVICE_CIDR = "127.2.0.0/16"
KWOK_FALLBACK_POD_CIDR = "127.1.0.0/24"


def repo_root() -> Path:
    """The checkout this package lives in (spe-dev is installed editable from it)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1], Path.cwd(), *Path.cwd().parents):
        if (candidate / "tests" / "controlplane" / "build.sh").is_file():
            return candidate
    raise RuntimeError(
        "cannot find the project checkout (tests/controlplane/build.sh); run spe-dev from inside it"
    )


def build_key(controlplane_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in BUILD_KEY_FILES:
        digest.update((controlplane_dir / name).read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    home: Path
    bin_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    ready_timeout: float = 240.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        root = None
        if env.get("SPE_DEV_HOME"):
            home = Path(env["SPE_DEV_HOME"]).resolve()
        else:
            root = repo_root()
            home = root / ".cache" / "spe-dev"
        if env.get("SPE_CONTROLPLANE_BIN"):
            bin_dir = Path(env["SPE_CONTROLPLANE_BIN"]).resolve()
        else:
            root = root or repo_root()
            cp = root / "tests" / "controlplane"
            cache = Path(env.get("SPE_CONTROLPLANE_CACHE") or root / ".cache" / "controlplane")
            bin_dir = cache / build_key(cp) / "bin"
        offset = int(env.get("SPE_DEV_PORT_OFFSET", "0"))
        ports = {
            name: int(env.get(f"SPE_DEV_{name.upper()}_PORT") or default + offset)
            for name, default in DEFAULT_PORTS.items()
        }
        timeout = float(env.get("SPE_DEV_READY_TIMEOUT", "240"))
        return cls(home=home, bin_dir=bin_dir, ports=ports, ready_timeout=timeout)

    # Layout of the state directory.
    @property
    def pki(self) -> Path:
        return self.home / "pki"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.home / "etcd"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    def kubeconfig_for(self, component: str) -> Path:
        return self.home / "kubeconfigs" / f"{component}.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports['apiserver']}"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def missing_binaries(self) -> list[str]:
        names = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
        return [n for n in names if not os.access(self.binary(n), os.X_OK)]
