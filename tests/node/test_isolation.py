"""The permit's NetworkPolicies, enforced by kube-router on the real node, tried from inside the
pods (short timeouts): a workspace reaches the hub API and the egress gateway and nothing else
(not another workspace of its permit or of another permit, not the Kubernetes API, not a "fake
internet" server, not DNS); only the hub's proxy reaches its notebook port. A control pod in a
namespace without policies reaches every one of those targets, so each ✗ is the policy's doing.

Then drift (the default-deny policy deleted: the operator restores it) and kube-router killed
(are forbidden connections still refused?).

Stand-ins: the hub, its proxy and the egress gateway are small servers with the labels the
permit's policies select, in the operator's namespace (the hub issue replaces them).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spe_dev.netns import enter_netns, ip, netns_exists
from spe_dev.procs import ProcessTable
from spe_dev.settings import SERVICE_CIDR
from spe_operator.children import LABEL_COMPONENT, LABEL_PART_OF, PART_OF
from tests.fixtures.waiting import wait_for

from .conftest import NOTEBOOK, probe, run_pod

pytestmark = pytest.mark.node

BLOCKED = ("refused", "timeout", "unreachable")
FAKE_INTERNET_TCP = 80
DNS = 53

# The fake internet: a TCP server and a DNS-ish UDP responder (answers any query with its id).
FAKE_INTERNET = r"""
import socket, threading
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 80)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nthe internet\n"); c.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 53))
    while True:
        data, peer = u.recvfrom(512); u.sendto(data[:2] + b"\x81\x80" + data[4:], peer)
threading.Thread(target=udp, daemon=True).start()
tcp()
"""


@dataclass
class Internet:
    ip: str
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def fake_internet(real_node) -> Iterator[Internet]:
    """A server in a namespace of its own, linked to the node's namespace like an uplink would
    be (198.18.(128+n).2); nothing routes further than that namespace."""
    lay = real_node.layout
    plan = real_node.cluster.settings.node_plan
    base = plan.inet_cidr.split("/")[0].rsplit(".", 1)[0]
    gw, addr = f"{base}.1", f"{base}.2"
    ns, node_end = lay.inet_netns, f"spe{real_node.cluster.settings.home_tag}i"
    if netns_exists(ns):
        ip("netns", "del", ns)
    ip("netns", "add", ns)
    ip("link", "add", node_end, "netns", lay.netns, "type", "veth", "peer", "name", "uplink", "netns", ns)
    ip("addr", "add", f"{gw}/24", "dev", node_end, netns=lay.netns)
    ip("link", "set", node_end, "up", netns=lay.netns)
    ip("link", "set", "lo", "up", netns=ns)
    ip("addr", "add", f"{addr}/24", "dev", "uplink", netns=ns)
    ip("link", "set", "uplink", "up", netns=ns)
    ip("route", "add", plan.pod_cidr, "via", gw, netns=ns)
    proc = subprocess.Popen([sys.executable, "-c", FAKE_INTERNET], preexec_fn=enter_netns(ns))
    try:
        wait_for("the fake internet's server", lambda: subprocess.run(
            [sys.executable, "-c", f"import socket; socket.create_connection(('{addr}', 80), 1)"],
            preexec_fn=enter_netns(ns), capture_output=True).returncode == 0, timeout=20)
        yield Internet(addr, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ip("link", "del", node_end, netns=lay.netns, check=False)
        ip("netns", "del", ns, check=False)


@dataclass
class Matrix:
    ns: str          # permit A's namespace (ws and ws2)
    other_ns: str    # permit B's namespace (ws)
    system: str      # the operator's namespace (stand-ins)
    control_ns: str  # a namespace without policies (control pod)
    ips: dict[str, str]
    hub_port: int
    egress_port: int
    notebook_port: int
    api_endpoint: tuple[str, int]


@pytest.fixture(scope="module")
def matrix(cluster, real_node, node_env, operator, fake_internet) -> Iterator[Matrix]:
    settings = operator
    image = real_node.image(NOTEBOOK)
    tag = secrets.token_hex(3)
    system = settings.operator_namespace
    serve = lambda port: ["python3", "-m", "http.server", str(port), "--bind", "0.0.0.0"]  # noqa: E731
    sleep = ["python3", "-c", "import time; time.sleep(86400)"]
    made: list[tuple[str, str]] = []

    def stand_in(name: str, component: str, port: int | None) -> dict:
        labels = {LABEL_PART_OF: PART_OF, LABEL_COMPONENT: component, "spe.ehds.io/test": "true"}
        pod = run_pod(cluster, real_node, system, f"{name}-{tag}", image=image,
                      command=serve(port) if port else sleep, labels=labels, port=port)
        made.append((system, f"{name}-{tag}"))
        return pod

    ns = node_env.permit()
    other_ns = node_env.permit()
    for n, w in ((ns, "ws"), (ns, "ws2"), (other_ns, "ws")):
        node_env.workspace(n, w)
    hub = stand_in("hub", "hub", settings.hub_api_port)
    gateway = stand_in("gateway", "egress-gateway", settings.egress_port)
    proxy = stand_in("proxy", "proxy", None)
    control_ns = f"t-node-control-{tag}"
    cluster.api().create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": control_ns, "labels": {"spe.ehds.io/test": "true"}}})
    wait_for("control namespace's ServiceAccount",
             lambda: cluster.api().get_or_none(f"/api/v1/namespaces/{control_ns}/serviceaccounts/default"), timeout=30)
    control = run_pod(cluster, real_node, control_ns, "control", image=image, command=sleep)
    wss = {key: node_env.wait_running(n, w) for key, (n, w) in
           {"ws": (ns, "ws"), "ws2": (ns, "ws2"), "other": (other_ns, "ws")}.items()}
    assert wss
    pod_ip = lambda n, p: cluster.api().get(f"/api/v1/namespaces/{n}/pods/{p}")["status"]["podIP"]  # noqa: E731
    ips = {"hub": hub["status"]["podIP"], "gateway": gateway["status"]["podIP"], "proxy": proxy["status"]["podIP"],
           "control": control["status"]["podIP"], "ws": pod_ip(ns, "ws-0"), "ws2": pod_ip(ns, "ws2-0"),
           "other": pod_ip(other_ns, "ws-0"), "internet": fake_internet.ip}
    s = cluster.settings
    yield Matrix(ns, other_ns, system, control_ns, ips, settings.hub_api_port, settings.egress_port,
                 settings.notebook_port, (s.node_plan.outer_ip, s.ports["apiserver"]))
    for n, p in made:
        try:
            cluster.api().delete(f"/api/v1/namespaces/{n}/pods/{p}")
        except Exception:  # noqa: BLE001
            pass
    try:
        cluster.api().delete(f"/api/v1/namespaces/{control_ns}")
    except Exception:  # noqa: BLE001
        pass


def kubernetes_service_ip() -> str:
    base = SERVICE_CIDR.split("/")[0].rsplit(".", 1)[0]
    return f"{base}.1"


def workspace_probes(m: Matrix) -> dict[str, tuple[str, str, int]]:
    return {
        "hub API": ("tcp", m.ips["hub"], m.hub_port),
        "egress gateway": ("tcp", m.ips["gateway"], m.egress_port),
        "same-permit workspace": ("tcp", m.ips["ws2"], m.notebook_port),
        "other permit's workspace": ("tcp", m.ips["other"], m.notebook_port),
        "Kubernetes API (Service)": ("tcp", kubernetes_service_ip(), 443),
        "Kubernetes API (endpoint)": ("tcp", *m.api_endpoint),
        "fake internet": ("tcp", m.ips["internet"], FAKE_INTERNET_TCP),
        "DNS (fake internet, UDP)": ("udp", m.ips["internet"], DNS),
        "DNS (fake internet, TCP)": ("tcp", m.ips["internet"], DNS),
    }


EXPECTED_FROM_WORKSPACE = {"hub API": True, "egress gateway": True}


def test_the_isolation_matrix(cluster, matrix):
    m = matrix
    results, control = {}, {}
    for what, (kind, host, port) in workspace_probes(m).items():
        results[what] = probe(cluster, m.ns, "ws-0", kind, host, port)
        control[what] = probe(cluster, m.control_ns, "control", kind, host, port)
    report = "\n".join(f"  workspace -> {w:<28} {results[w]:<12} (control pod: {control[w]})" for w in results)
    print("isolation matrix:\n" + report)
    for what, outcome in results.items():
        if EXPECTED_FROM_WORKSPACE.get(what):
            assert outcome == "open", f"{what} must be reachable from a workspace:\n{report}"
        else:
            assert outcome in BLOCKED, f"{what} must be blocked from a workspace:\n{report}"
    # Each blocked target exists and answers: the control pod (a namespace without policies)
    # reaches those outside the permits, the hub's proxy reaches the workspaces' notebook port.
    # The fake internet serves no DNS over TCP.
    for what, outcome in control.items():
        if "workspace" in what:
            host, port = workspace_probes(m)[what][1:]
            assert probe(cluster, m.system, f"proxy-{_tag(m)}", "tcp", host, port) == "open", what
        elif what != "DNS (fake internet, TCP)":
            assert outcome == "open", f"the control pod must reach {what}:\n{report}"
    # The `kubernetes` Service reaches the API server, with a certificate for its ClusterIP
    # (verified against the cluster's CA; anonymous requests are refused: 401).
    ca = Path(cluster.ca_file).read_text()
    tls = cluster.kubectl("exec", "-n", m.control_ns, "control", "--", "python3", "-c",
                          "import ssl, sys, urllib.request, urllib.error\n"
                          "ctx = ssl.create_default_context(cadata=sys.argv[1])\n"
                          "try:\n urllib.request.urlopen('https://%s/version', context=ctx, timeout=5)\n"
                          "except urllib.error.HTTPError as e:\n print(e.code)" % kubernetes_service_ip(), ca)
    assert tls.stdout.strip() == "401", tls.stdout + tls.stderr


def test_only_the_hub_and_its_proxy_reach_the_notebook(cluster, matrix):
    """The proxy carries the researcher's traffic; the hub checks that a starting server answers
    (JupyterHub does, before it routes to it); nothing else reaches the notebook."""
    m = matrix
    ws = (m.ips["ws"], m.notebook_port)
    assert probe(cluster, m.system, f"proxy-{_tag(m)}", "tcp", *ws) == "open"
    assert probe(cluster, m.system, f"hub-{_tag(m)}", "tcp", *ws) == "open"
    assert probe(cluster, m.control_ns, "control", "tcp", *ws) in BLOCKED
    assert probe(cluster, m.ns, "ws2-0", "tcp", *ws) in BLOCKED


def _tag(m: Matrix) -> str:
    return m.control_ns.rsplit("-", 1)[1]


def test_a_deleted_default_deny_is_restored(cluster, matrix):
    m = matrix
    api = cluster.api()
    path = f"/apis/networking.k8s.io/v1/namespaces/{m.ns}/networkpolicies/spe-default-deny"
    assert api.get_or_none(path)
    internet = ("tcp", m.ips["internet"], FAKE_INTERNET_TCP)
    t0 = time.monotonic()
    api.delete(path)
    open_seen, tries = [], 0
    while api.get_or_none(path) is None:
        tries += 1
        outcome = probe(cluster, m.ns, "ws-0", *internet, timeout=1.0)
        if outcome == "open":
            open_seen.append(time.monotonic() - t0)
        assert time.monotonic() - t0 < 120, "the operator did not restore spe-default-deny within 120 s"
    restored = time.monotonic() - t0
    print(f"spe-default-deny restored {restored:.1f}s after deletion; {tries} probes to the fake internet "
          f"meanwhile, open at: {open_seen or 'never'}")
    # The allow-* policies select the workspace too (Ingress + Egress), so it stays isolated.
    assert not open_seen
    assert probe(cluster, m.ns, "ws-0", *internet) in BLOCKED


def test_kube_router_killed_fails_closed(cluster, real_node, matrix):
    """kube-router killed (SIGKILL): its iptables rules and ipsets stay in the node's namespace,
    so existing pods stay isolated; a pod started while it is down has no rules of its own yet,
    and the node namespace's FORWARD policy (DROP, set by spe-dev) keeps it from reaching
    anything until kube-router is back, which then applies the policies to it."""
    m = matrix
    s = cluster.settings
    table = ProcessTable(s.run_dir, s.log_dir)
    rec = table.running("kube-router")
    assert rec, "kube-router is not running"
    os.kill(rec.pid, signal.SIGKILL)
    wait_for("kube-router gone", lambda: not rec.alive(), timeout=10)
    try:
        internet = ("tcp", m.ips["internet"], FAKE_INTERNET_TCP)
        assert probe(cluster, m.ns, "ws-0", *internet) in BLOCKED
        assert probe(cluster, m.ns, "ws-0", "tcp", m.ips["ws2"], m.notebook_port) in BLOCKED
        assert probe(cluster, m.ns, "ws-0", "tcp", m.ips["hub"], m.hub_port) == "open"
        # A new pod selected by the permit's policies, started while kube-router is down.
        image = real_node.image(NOTEBOOK)
        run_pod(cluster, real_node, m.ns, "late", image=image,
                command=["python3", "-c", "import time; time.sleep(86400)"],
                labels={"spe.ehds.io/workspace": "late"})
        late = probe(cluster, m.ns, "late", *internet)
        print(f"kube-router down: existing workspace blocked; a pod started meanwhile -> fake internet: {late}")
        assert late in BLOCKED
        assert probe(cluster, m.control_ns, "control", *internet) == "open"  # the internet is there
    finally:
        up = subprocess.run([sys.executable, "-m", "spe_dev", "up"], capture_output=True, text=True, timeout=300,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("SPE_DEV_")},
                                 "SPE_DEV_HOME": str(s.home), "SPE_DEV_PORT_OFFSET": str(s.ports["apiserver"] - 36443)})
        assert up.returncode == 0, up.stdout + up.stderr
    # Back up: kube-router applies the permit's policies to the late pod: the hub API opens,
    # the internet stays shut.
    t0 = time.monotonic()
    wait_for("kube-router's rules for the late pod", lambda: probe(cluster, m.ns, "late", "tcp", m.ips["hub"],
                                                                  m.hub_port, timeout=1.0) == "open",
             timeout=60, interval=1)
    print(f"late pod reaches the hub API {time.monotonic() - t0:.1f}s after kube-router's restart")
    assert probe(cluster, m.ns, "late", *internet) in BLOCKED
    cluster.api().delete(f"/api/v1/namespaces/{m.ns}/pods/late")
