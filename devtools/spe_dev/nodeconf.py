"""Configuration of the real node's processes (pure: settings in, file contents and argv out).

containerd (Debian's 1.6, own root/state/socket), the CNI bridge network, the kubelet and
kube-proxy (from the multi-call binary) and kube-router (NetworkPolicy only). Everything
lives under <home>/node; see NodeLayout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .pki import Pki
from .settings import LAB_NET, REAL_NODE_NAME, SERVICE_CIDR, Settings

PAUSE_IMAGE = "localhost/spe-pause:1"
CNI_BIN_DIR = "/usr/lib/cni"
RUNC = "/usr/sbin/runc"
NODE_TAINT = {"key": "spe-dev.ehds.io/real-node", "value": "true", "effect": "NoSchedule"}
NODE_LABELS = {"spe-dev.ehds.io/node": "real", "type": "real"}
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_ROUTER_HEALTH_PORT = 20244


@dataclass(frozen=True)
class NodeLayout:
    s: Settings

    @property
    def dir(self) -> Path:
        return self.s.node_dir

    @property
    def netns(self) -> str:
        return f"spe-{self.s.home_tag}-node"

    @property
    def inet_netns(self) -> str:
        return f"spe-{self.s.home_tag}-inet"

    @property
    def veth_outer(self) -> str:
        return f"spe{self.s.home_tag}o"

    @property
    def veth_node(self) -> str:
        return f"spe{self.s.home_tag}n"

    @property
    def bridge(self) -> str:
        return "cni0"

    @property
    def cgroup_root(self) -> str:
        return f"/spe-{self.s.home_tag}"

    @property
    def cni_network(self) -> str:
        return f"spe-{self.s.home_tag}"

    @property
    def containerd_dir(self) -> Path:
        return self.dir / "containerd"

    @property
    def containerd_config(self) -> Path:
        return self.dir / "containerd.toml"

    @property
    def sock_dir(self) -> Path:
        """containerd's sockets: a short path (a unix socket's path has at most 107 bytes, and a
        test's home can be long); removed by `spe-dev down`."""
        return Path("/run") / f"spe-{self.s.home_tag}"

    @property
    def containerd_sock(self) -> Path:
        return self.sock_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.dir / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        return self.dir / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.dir / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.dir / "kube-proxy.yaml"

    @property
    def resolv_conf(self) -> Path:
        return self.dir / "resolv.conf"

    @property
    def images_file(self) -> Path:
        """The images imported into containerd: name -> digest (written by spe-dev up)."""
        return self.dir / "images.json"

    @property
    def api_server(self) -> str:
        """The API server as the node's processes dial it: the relay on spe-dev's veth end."""
        return f"https://{self.s.node_plan.outer_ip}:{self.s.ports['apiserver']}"


def containerd_toml(lay: NodeLayout) -> str:
    d = lay.containerd_dir
    return f"""# spe-dev's containerd for the real node {REAL_NODE_NAME} (generated)
version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{lay.containerd_sock}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE here: runc must not lower a sandbox's oom_score_adj below ours.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  max_container_log_line_size = 16384
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{RUNC}"
        Root = "{d / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{lay.cni_conf_dir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d / 'certs.d'}"
"""


def cni_conflist(lay: NodeLayout) -> dict:
    plan = lay.s.node_plan
    return {
        "cniVersion": "0.4.0",
        "name": lay.cni_network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": lay.bridge,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(lay.dir / "cni" / "ipam"),
                    "ranges": [[{"subnet": plan.pod_cidr, "gateway": plan.pod_gateway}]],
                    # Never a default route: pods reach the lab range (services, the API relay)
                    # through the node's bridge, and nothing else exists for them.
                    "routes": [{"dst": LAB_NET}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(lay: NodeLayout, pki: Pki) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": lay.cgroup_root,
        "containerRuntimeEndpoint": f"unix://{lay.containerd_sock}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "address": lay.s.node_plan.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        # A resolv.conf without nameservers: pods get no DNS at all.
        "resolvConf": str(lay.resolv_conf),
        "podLogsDir": str(lay.dir / "pod-logs"),
        "failSwapOn": False,
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        "registerNode": True,
        "registerWithTaints": [NODE_TAINT],
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "enforceNodeAllocatable": ["pods"],
        "maxPods": 110,
        "nodeStatusUpdateFrequency": "4s",
        "nodeStatusReportFrequency": "20s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "staticPodPath": "",
        "containerLogMaxSize": "5Mi",
        "containerLogMaxFiles": 2,
        "localStorageCapacityIsolation": True,
    }


def kubelet_argv(lay: NodeLayout, kubeconfig: Path) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
    return [
        str(lay.s.binary("kubelet")),
        f"--config={lay.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={lay.kubelet_dir}",
        f"--cert-dir={lay.dir / 'kubelet-pki'}",
        f"--hostname-override={REAL_NODE_NAME}",
        f"--node-ip={lay.s.node_plan.node_ip}",
        f"--node-labels={labels}",
        "--v=1",
    ]


def kube_proxy_config(lay: NodeLayout, kubeconfig: Path) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": REAL_NODE_NAME,
        "bindAddress": lay.s.node_plan.node_ip,
        "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        # Machine-wide conntrack settings stay as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "nodePortAddresses": [f"{lay.s.node_plan.node_ip}/32"],
    }


def kube_proxy_argv(lay: NodeLayout) -> list[str]:
    return [str(lay.s.binary("kube-proxy")), f"--config={lay.kube_proxy_config}", "--v=1"]


def kube_router_argv(lay: NodeLayout, kubeconfig: Path) -> list[str]:
    return [
        str(lay.s.binary("kube-router")),
        f"--kubeconfig={kubeconfig}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        "--enable-ipv4=true",
        "--enable-ipv6=false",
        f"--hostname-override={REAL_NODE_NAME}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--health-port={KUBE_ROUTER_HEALTH_PORT}",
        "--metrics-port=0",
        "--iptables-sync-period=5m",
        "--v=1",
    ]


def relay_argv(lay: NodeLayout) -> list[str]:
    """The API relay in spe-dev's namespace: the node's processes and pods dial
    <outer_ip>:<apiserver port>; the API server itself listens on loopback only."""
    port = lay.s.ports["apiserver"]
    return [
        "socat",
        f"TCP-LISTEN:{port},bind={lay.s.node_plan.outer_ip},fork,reuseaddr",
        f"TCP:127.0.0.1:{port}",
    ]


def render(lay: NodeLayout, pki: Pki, kubeconfigs: dict[str, Path]) -> dict[Path, str]:
    """Every configuration file of the node: path -> content."""
    return {
        lay.containerd_config: containerd_toml(lay),
        lay.cni_conf_dir / "10-spe.conflist": json.dumps(cni_conflist(lay), indent=2),
        lay.kubelet_config: yaml.safe_dump(kubelet_config(lay, pki), sort_keys=False),
        lay.kube_proxy_config: yaml.safe_dump(kube_proxy_config(lay, kubeconfigs["kube-proxy"]), sort_keys=False),
        lay.resolv_conf: "# spe-dev: pods of the real node get no DNS server\noptions ndots:0\n",
    }
