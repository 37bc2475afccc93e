"""Network safety of the real node: every address and route the suite made stays on this machine.

Checked after `spe-dev up`: the namespace spe-dev runs in (all of it when the suite made it, e.g.
`make test`'s `unshare --net`; else only what spe-dev added to it), the node's namespace and
every pod's namespace: addresses only in 127.0.0.0/8 or 198.18.0.0/15, routes only towards
those ranges, never a default route; the blackhole for 198.18.0.0/15 in spe-dev's namespace;
its ip_forward as it was before the cluster started; no NAT rule in it. And a separate spe-dev
home brought up and down leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spe_dev import hostguard
from spe_dev.netns import addresses, ip_json, namespaces, netns_exists, link_exists, routes
from spe_dev.nodeconf import NodeLayout
from spe_dev.procs import processes_mentioning
from spe_dev.settings import LAB_NET, Settings

pytestmark = pytest.mark.node

ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network(LAB_NET))


def allowed(addr: str) -> bool:
    net = ipaddress.ip_network(addr, strict=False)
    if net.version == 6:
        return net.subnet_of(ipaddress.ip_network("::1/128")) or net.subnet_of(ipaddress.ip_network("fe80::/10"))
    return any(net.subnet_of(a) for a in ALLOWED)


def route_problems(where: str, table: list[dict]) -> list[str]:
    out = []
    for r in table:
        dst = r.get("dst", "")
        if dst == "default" or dst in ("0.0.0.0/0", "::/0"):
            out.append(f"{where}: default route {r}")
        elif r.get("type") in ("broadcast",) or dst in ("", "ff00::/8"):
            continue
        elif not allowed(dst if "/" in dst else dst + ("/32" if ":" not in dst else "/128")):
            out.append(f"{where}: route to {dst} {r}")
        if r.get("gateway") and not allowed(r["gateway"] + "/32"):
            out.append(f"{where}: gateway {r['gateway']}")
    return out


def in_netns_path(path: str, *argv: str) -> str | None:
    """Output of ``argv`` in the network namespace bind-mounted at ``path``; None when that
    namespace went away meanwhile (a pod of an earlier test being torn down)."""
    proc = subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        with open("/proc/self/mountinfo") as fh:
            if not any(f" {path} " in line for line in fh):
                return None
        raise AssertionError(f"nsenter --net={path} {' '.join(argv)}: {proc.stderr}")
    return proc.stdout


def pod_netns_paths(home: Path) -> list[str]:
    """The network namespaces containerd made for pods (bind-mounted under its state dir)."""
    prefix = str(home.resolve()) + "/"
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            mp = fields[4]
            fstype = fields[fields.index("-") + 1]
            if mp.startswith(prefix) and fstype == "nsfs" and "/netns/" in mp:
                out.append(mp)
    return sorted(set(out))


def test_every_namespace_the_suite_made_stays_in_the_lab_range(cluster, real_node, node_namespace):
    from .conftest import run_pod

    # One pod at least, so a pod's namespace is checked too.
    run_pod(cluster, real_node, node_namespace, "idle", image=real_node.image("notebook-jupyterlab"),
            command=["python3", "-c", "import time; time.sleep(3600)"])
    lay = real_node.layout
    problems: list[str] = []
    # A namespace the suite made (`unshare --net`) holds nothing but lo and spe-dev's veths; a
    # developer's host has interfaces of its own, and there only what spe-dev added is checked.
    suite_made_outer = all(link["ifname"] == "lo" or link["ifname"].startswith("spe")
                           for link in ip_json("link", "show"))
    # spe-dev's namespace.
    for ifname, addr in addresses():
        if (suite_made_outer or ifname == lay.veth_outer) and not allowed(addr):
            problems.append(f"spe-dev's namespace: {addr} on {ifname}")
    outer_routes = routes()
    if suite_made_outer:
        problems += route_problems("spe-dev's namespace", outer_routes)
    else:
        problems += route_problems("spe-dev's namespace", [r for r in outer_routes if r.get("dev") == lay.veth_outer])
    assert any(r.get("type") == "blackhole" and r.get("dst") == LAB_NET for r in outer_routes), outer_routes
    # The node's namespace, every address and route.
    for ifname, addr in addresses(lay.netns):
        if not allowed(addr):
            problems.append(f"node namespace: {addr} on {ifname}")
    problems += route_problems("node namespace", routes(lay.netns))
    # Every pod's namespace.
    pods = pod_netns_paths(cluster.home)
    assert pods, "no pod network namespace found under the home"
    checked = 0
    for path in pods:
        addrs = in_netns_path(path, "ip", "-j", "addr")
        if addrs is None:
            continue
        for link in json.loads(addrs or "[]"):
            for a in link.get("addr_info", []):
                if not allowed(f"{a['local']}/{a['prefixlen']}"):
                    problems.append(f"pod namespace {path}: {a['local']} on {link['ifname']}")
        problems += route_problems(f"pod namespace {path}", json.loads(
            in_netns_path(path, "ip", "-j", "-4", "route", "show", "table", "all") or "[]"))
        checked += 1
    assert checked, "no live pod network namespace checked"
    assert not problems, "\n".join(problems)
    # Forwarding of spe-dev's namespace is untouched; no NAT there.
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == cluster.outer_ip_forward
    if suite_made_outer:  # a developer's host may have NAT rules of its own (Docker's, ...)
        nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True)
        assert not [line for line in nat.stdout.splitlines() if line.startswith("-A")], nat.stdout


def test_containerd_holds_only_local_images(real_node):
    from spe_dev.nodeimages import image_digests

    refs = sorted(image_digests(real_node.layout))
    assert refs, "containerd lists no image at all"
    assert all(ref.startswith("localhost/") or ref.startswith("sha256:") for ref in refs), refs
    assert any(ref.startswith("localhost/spe-pause:") for ref in refs)


def _spe_dev(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spe_dev", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_up_twice_then_down_leaves_nothing(cluster, tmp_path_factory):
    """A second spe-dev home (ports +200, node slot 2): up, up again (idempotent), down; then
    no process, namespace, interface, mount, cgroup or machine-wide trace of it is left."""
    home = tmp_path_factory.mktemp("spe-dev-second")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPE_DEV_")}
    env.update(SPE_DEV_HOME=str(home), SPE_DEV_PORT_OFFSET="200", SPE_IMAGES_CACHE=str(home / "no-images"),
               SPE_DEV_READY_TIMEOUT="240")
    s = Settings.from_env(env)
    lay = NodeLayout(s)
    sysctls_before = {k: Path("/proc/sys", k).read_text() for k in hostguard.KUBELET_SYSCTLS}
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    try:
        t0 = time.monotonic()
        up = _spe_dev(env, "up", "--fresh")
        cold = time.monotonic() - t0
        assert up.returncode == 0, up.stdout + up.stderr
        assert netns_exists(lay.netns) and link_exists(lay.veth_outer)
        t1 = time.monotonic()
        again = _spe_dev(env, "up")
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
        assert time.monotonic() - t1 < 15
        status = _spe_dev(env, "status")
        assert status.returncode == 0, status.stdout
        for name in ("containerd", "kubelet", "kube-proxy", "kube-router", "api-relay"):
            assert any(line.startswith(name) and "rss" in line for line in status.stdout.splitlines()), status.stdout
        print(f"second home: up {cold:.1f}s (first start of this home)")
    finally:
        down = _spe_dev(env, "down", "--purge")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not processes_mentioning(str(home)), processes_mentioning(str(home))
    assert lay.netns not in namespaces()
    assert not link_exists(lay.veth_outer)
    assert not [ln for ln in ip_json("link", "show") if ln["ifname"] in (lay.veth_outer, lay.veth_node)]
    with open("/proc/self/mountinfo") as fh:
        assert not [line for line in fh if str(home) in line]
    assert not [d for d in Path("/sys/fs/cgroup").glob(f"*/{lay.cgroup_root.lstrip('/')}")]
    assert str(home) not in hostguard.holders()
    if not hostguard.holders():  # the suite's own node still runs, so normally this is skipped
        assert {k: Path("/proc/sys", k).read_text() for k in hostguard.KUBELET_SYSCTLS} == sysctls_before
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward_before
