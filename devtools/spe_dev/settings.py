"""Where spe-dev keeps its state and binaries, and which loopback ports it uses.

One typed settings object, built from the environment when a command starts (never at
import time) and passed down.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    "kube-router/go.mod", "kube-router/go.sum", "kube-router/tools.go",
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

# Address plan. Every listening socket of the control plane is on 127.0.0.1; every other
# address is in 198.18.0.0/15 (RFC 2544's benchmarking range, never routed on the internet),
# held only by interfaces spe-dev creates (see node_plan below), and the namespace spe-dev runs
# in holds a blackhole route for the whole range:
#   127.0.0.1         bind address of every component, kwok's default node IP
#   127.0.1.N         InternalIP of fake node N (kwok serves their kubelet API on loopback)
#   198.19.N.0/24     podCIDR of fake node N (kwok hands fake pod IPs out of it; no interface
#                     holds them, so EndpointSlices may list them and nothing can reach them)
#   198.19.0.0/24     kwok's fallback pod CIDR, for a node without podCIDR
#   198.19.192.0/18   service ClusterIPs (kube-proxy on the real node routes them)
#   198.18.0.0/17     the real node, slot n (node_plan)
LAB_NET = "198.18.0.0/15"
SERVICE_CIDR = "198.19.192.0/18"
KWOK_FALLBACK_POD_CIDR = "198.19.0.0/24"
REAL_NODE_NAME = "spe-node-1"

# Named clusters (`spe-dev --cluster NAME`, or SPE_DEV_CLUSTER): independent control planes side
# by side, e.g. a federation's central and a hospital node. Each has its own home
# (<home>-<NAME>: PKI, etcd, kubeconfig, logs), its own ports and no real node unless asked for
# (SPE_DEV_REAL_NODE=1). Its ports are the defaults shifted by SPE_DEV_PORT_OFFSET plus
# cluster_port_offset(NAME): 1000..2990 in steps of 10, away from the offsets of the default
# clusters (dev 0, test 100, 200, 300), so no port of one equals a port of another unless two names
# share a bucket (one in 200; `up` then says which port is busy: set SPE_DEV_PORT_OFFSET).
CLUSTER_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")


def cluster_port_offset(name: str) -> int:
    bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 200
    return 1000 + 10 * bucket


@dataclass(frozen=True)
class NodePlan:
    """Addresses of the real node of one spe-dev home (slot 0..63, from the port offset):

    pod_cidr     198.18.n.0/24       pods of the real node (bridge cni0 holds .1)
    link         198.18.(64+n).0/30  veth between spe-dev's namespace (.1: the API relay and the
                                     API server's advertised address) and the node's (.2: node IP)
    inet         198.18.(128+n).0/24 a test's "fake internet" namespace, linked to the node's
    """

    slot: int

    @property
    def pod_cidr(self) -> str:
        return f"198.18.{self.slot}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"198.18.{self.slot}.1"

    @property
    def outer_ip(self) -> str:
        return f"198.18.{64 + self.slot}.1"

    @property
    def node_ip(self) -> str:
        return f"198.18.{64 + self.slot}.2"

    @property
    def link_prefix(self) -> int:
        return 30

    @property
    def inet_cidr(self) -> str:
        return f"198.18.{128 + self.slot}.0/24"


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
    # The real worker node (containerd + kubelet in a network namespace of its own) beside the
    # kwok nodes; SPE_DEV_REAL_NODE=0 (or `spe-dev up --no-real-node`) runs kwok only.
    real_node: bool = True
    node_slot: int = 0
    # Where images/build-local.sh leaves the project's images (index.json + docker-archives);
    # the real node imports them into its containerd.
    images_dir: Path | None = None
    # The name of a named cluster (`--cluster NAME`); None: the default cluster of the home.
    cluster: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cluster: str | None = None) -> "Settings":
        env = os.environ if env is None else env
        root = None
        cluster = cluster or env.get("SPE_DEV_CLUSTER") or None
        if cluster is not None and not CLUSTER_NAME.match(cluster):
            raise RuntimeError(
                f"cluster name {cluster!r} is not valid: use 1-32 lower-case letters, digits and '-', "
                "starting with a letter (e.g. central, node-a)")
        if env.get("SPE_DEV_HOME"):
            home = Path(env["SPE_DEV_HOME"]).resolve()
        else:
            root = repo_root()
            home = root / ".cache" / "spe-dev"
        if cluster is not None:
            home = home.with_name(f"{home.name}-{cluster}")
        if env.get("SPE_CONTROLPLANE_BIN"):
            bin_dir = Path(env["SPE_CONTROLPLANE_BIN"]).resolve()
        else:
            root = root or repo_root()
            cp = root / "tests" / "controlplane"
            cache = Path(env.get("SPE_CONTROLPLANE_CACHE") or root / ".cache" / "controlplane")
            bin_dir = cache / build_key(cp) / "bin"
        offset = int(env.get("SPE_DEV_PORT_OFFSET", "0"))
        if cluster is not None:
            offset += cluster_port_offset(cluster)
        ports = {
            name: int(env.get(f"SPE_DEV_{name.upper()}_PORT") or default + offset)
            for name, default in DEFAULT_PORTS.items()
        }
        timeout = float(env.get("SPE_DEV_READY_TIMEOUT", "240"))
        # A named cluster runs kwok nodes only unless SPE_DEV_REAL_NODE asks for the real node.
        real_node = env.get("SPE_DEV_REAL_NODE", "0" if cluster else "1").strip().lower() not in (
            "0", "false", "no", "off", "")
        slot = int(env.get("SPE_DEV_NODE_SLOT") or (offset // 100) % 64)
        if not 0 <= slot < 64:
            raise RuntimeError(f"SPE_DEV_NODE_SLOT={slot} is out of range (0..63)")
        if env.get("SPE_IMAGES_CACHE"):
            images_dir = Path(env["SPE_IMAGES_CACHE"]).resolve()
        else:
            try:
                images_dir = (root or repo_root()) / ".cache" / "images"
            except RuntimeError:
                images_dir = None
        return cls(home=home, bin_dir=bin_dir, ports=ports, ready_timeout=timeout,
                   real_node=real_node, node_slot=slot, images_dir=images_dir, cluster=cluster)

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

    @property
    def node_dir(self) -> Path:
        """State of the real node (containerd, kubelet, CNI), under the home."""
        return self.home / "node"

    @property
    def node_plan(self) -> NodePlan:
        return NodePlan(self.node_slot)

    @property
    def home_tag(self) -> str:
        """Six hex digits naming this home's network namespaces, interfaces and cgroups, which are
        machine-wide names: two homes never share one."""
        return hashlib.sha256(str(self.home).encode()).hexdigest()[:6]

    def missing_binaries(self) -> list[str]:
        names = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"]
        if self.real_node:
            names += ["kubelet", "kube-proxy", "kube-router"]
        return [n for n in names if not os.access(self.binary(n), os.X_OK)]
