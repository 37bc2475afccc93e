"""Command lines of the control-plane components (pure: settings + PKI in, argv out)."""

from __future__ import annotations

from pathlib import Path

from .nodes import KWOK_SELECTOR
from .pki import FRONT_PROXY_CLIENT, Pki
from .settings import KWOK_FALLBACK_POD_CIDR, LOOPBACK, SERVICE_CIDR, Settings

STAGES_DIR = Path(__file__).resolve().parent / "stages"

# Start order; `down` stops in reverse.
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

ADMISSION_PLUGINS = (
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "NodeRestriction", "PodSecurity",
    "DefaultStorageClass", "DefaultTolerationSeconds", "Priority", "ResourceQuota",
    "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook", "ValidatingAdmissionPolicy",
    # A namespace's annotations may pin its pods to nodes and give them tolerations: the node
    # tests put their pods on the real (tainted) node this way, leaving the pod specs unchanged.
    "PodNodeSelector", "PodTolerationRestriction",
)

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def etcd_argv(s: Settings) -> list[str]:
    client = f"http://{LOOPBACK}:{s.ports['etcd']}"
    peer = f"http://{LOOPBACK}:{s.ports['etcd_peer']}"
    return [
        str(s.binary("etcd")),
        "--name=spe-dev",
        f"--data-dir={s.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=spe-dev={peer}",
        "--initial-cluster-state=new",
        # A throw-away test store: skip fsync, keep it small.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def _endpoint_args(s: Settings) -> list[str]:
    if s.real_node:
        # Pods of the real node reach the API server through the `kubernetes` Service: its
        # endpoint is the relay on spe-dev's end of the node's veth (same port as the server).
        # The API server reaches Services (an admission webhook's, an aggregated API's) at their
        # endpoints' pod IPs, which are routed to the node: ClusterIPs exist only inside it.
        return [f"--advertise-address={s.node_plan.outer_ip}", "--enable-aggregator-routing=true"]
    # Without the real node nothing could reach an advertised address; Endpoints validation
    # refuses loopback ones, so publish no endpoint for the `kubernetes` Service at all.
    return [f"--advertise-address={LOOPBACK}", "--endpoint-reconciler-type=none"]


def apiserver_argv(s: Settings, pki: Pki) -> list[str]:
    return [
        str(s.binary("kube-apiserver")),
        f"--etcd-servers=http://{LOOPBACK}:{s.ports['etcd']}",
        f"--bind-address={LOOPBACK}",
        *_endpoint_args(s),
        f"--secure-port={s.ports['apiserver']}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca_cert}",
        f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
        "--kubelet-preferred-address-types=InternalIP",
        # Request-header authentication (front proxy), as kubeadm sets it up: aggregated API
        # servers, the controller manager and the scheduler trust the API server's proxy.
        f"--requestheader-client-ca-file={pki.cert('front-proxy-ca')}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.cert(FRONT_PROXY_CLIENT)}",
        f"--proxy-client-key-file={pki.key(FRONT_PROXY_CLIENT)}",
        "--authorization-mode=Node,RBAC",
        "--anonymous-auth=false",
        f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        # ClusterIPs in 198.19.192.0/18: kube-proxy routes them on the real node only.
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--profiling=false",
        "--event-ttl=1h",
        "--v=1",
    ]


def _component_common(s: Settings, name: str, port_key: str) -> list[str]:
    kubeconfig = str(s.kubeconfig_for(name))
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={s.ports[port_key]}",
        f"--cert-dir={s.home / 'serving' / name}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_argv(s: Settings, pki: Pki) -> list[str]:
    return [
        str(s.binary("kube-controller-manager")),
        *_component_common(s, "controller-manager", "controller_manager"),
        # Every default controller (garbage collector, namespace, job, statefulset, replicaset,
        # resourcequota, serviceaccount, serviceaccount-token, node lifecycle, endpointslice,
        # ...) except the legacy Endpoints ones: kube-proxy reads EndpointSlices only.
        "--controllers=*,-endpoints-controller,-endpointslice-mirroring-controller",
        "--use-service-account-credentials=true",
        # Client rate limits of a busy production control plane rather than the library
        # defaults (20 qps): with 1,000 workspaces the claims, PVs and pods the controllers
        # write would otherwise queue for minutes behind the limiter, not behind any real work.
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--cluster-name=spe-dev",
        # Nodes get their podCIDRs from spe-dev, not from node IPAM.
        "--allocate-node-cidrs=false",
    ]


def scheduler_argv(s: Settings) -> list[str]:
    return [str(s.binary("kube-scheduler")), *_component_common(s, "scheduler", "scheduler"),
            "--kube-api-qps=100", "--kube-api-burst=200"]


def kwok_argv(s: Settings) -> list[str]:
    stages = sorted(STAGES_DIR.glob("*.yaml"))
    return [
        str(s.binary("kwok")),
        f"--kubeconfig={s.kubeconfig_for('kwok')}",
        *[f"--config={p}" for p in stages],
        f"--manage-nodes-with-annotation-selector={KWOK_SELECTOR}",
        f"--node-ip={LOOPBACK}",
        f"--cidr={KWOK_FALLBACK_POD_CIDR}",
        f"--node-port={s.ports['kwok']}",
        f"--server-address={LOOPBACK}:{s.ports['kwok']}",
        "--node-lease-duration-seconds=40",
    ]
