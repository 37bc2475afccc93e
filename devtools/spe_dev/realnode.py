"""The real worker node `spe-node-1`: containerd, kubelet, kube-proxy and kube-router in a
network namespace of their own, beside kwok's fake nodes.

Layout (addresses from settings.NodePlan, names from nodeconf.NodeLayout):

  spe-dev's namespace (the host, or the test suite's namespace)
    API server 127.0.0.1:<port>     socat relay <outer_ip>:<port> -> 127.0.0.1:<port>
    veth spe<tag>o  <outer_ip>/30   route <pod_cidr> via <node_ip>; blackhole 198.18.0.0/15
  netns spe-<tag>-node
    veth spe<tag>n  <node_ip>/30    (node IP: the API server dials the kubelet here)
    bridge cni0     <pod_gateway>/24   pods: one veth each, route 198.18.0.0/15 via the bridge
    containerd, kubelet, kube-proxy (Services), kube-router (NetworkPolicy)

No namespace has a default route; forwarding is on only inside the node's namespace (the CNI
bridge sets it there). `down` removes everything `up` made: processes (by pid file, then
whatever is left in the node's cgroups and the containerd shims of this home), mounts under
the home, the namespace, the veth, routes, cgroups, and via hostguard the kubelet's
machine-wide traces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from . import hostguard, nodeconf, nodeimages
from .api import Api, HttpError
from .kubeconfig import write_kubeconfig
from .netns import NetError, enter_netns, ip, link_exists, netns_exists, run_in
from .nodeconf import NodeLayout
from .pki import Pki
from .procs import ProcessTable, cmdline, processes_mentioning, rss_kib
from .settings import LAB_NET, REAL_NODE_NAME, Settings

Say = Callable[[str], None]

# Start order; `down` stops in reverse.
ORDER = ("api-relay", "containerd", "kubelet", "kube-proxy", "kube-router")
CGROUP_FS = Path("/sys/fs/cgroup")
DEBIAN_PROGRAMS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "socat", "iptables", "ipset",
                   "conntrack", "gcc")


class NodeError(RuntimeError):
    pass


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class RealNode:
    def __init__(self, settings: Settings, table: ProcessTable, say: Say = print):
        self.s = settings
        self.lay = NodeLayout(settings)
        self.table = table
        self.say = say

    # ----- inspection ---------------------------------------------------------------------

    def running(self) -> dict[str, int]:
        out = {}
        for name in ORDER:
            rec = self.table.running(name)
            if rec:
                out[name] = rec.pid
        return out

    def ready(self, api: Api) -> bool:
        try:
            node = api.get_or_none(f"/api/v1/nodes/{REAL_NODE_NAME}")
        except (HttpError, OSError):
            return False
        if not node:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in node.get("status", {}).get("conditions", []))

    def _containerd_answers(self) -> bool:
        try:
            return nodeimages.ctr(self.lay, "version", timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def firewall_synced(self) -> bool:
        proc = run_in(self.lay.netns, ["iptables", "-S", "FORWARD"])
        return proc.returncode == 0 and "KUBE-ROUTER-FORWARD" in proc.stdout

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise NodeError("the real node needs root (network namespaces, cgroups, containerd); "
                            "run as root or use `spe-dev up --no-real-node` (SPE_DEV_REAL_NODE=0)")
        # The kubelet binds unix sockets under its root dir (pod-resources/<10 digits>).
        longest = self.lay.kubelet_dir / "pod-resources" / ("0" * 10)
        if len(str(longest)) > 104:
            raise NodeError(f"the home {self.s.home} is too long a path for the kubelet's unix sockets "
                            f"({longest} exceeds 104 bytes); choose a shorter SPE_DEV_HOME")
        missing = [p for p in DEBIAN_PROGRAMS if shutil.which(p) is None]
        if not Path(nodeconf.CNI_BIN_DIR, "bridge").exists():
            missing.append("containernetworking-plugins")
        if missing:
            raise NodeError(f"programs of the real node missing: {', '.join(missing)}; run "
                            "`bash scripts/deps.d/node.sh` (Debian packages), or use "
                            "`spe-dev up --no-real-node` (SPE_DEV_REAL_NODE=0)")

    # ----- up -----------------------------------------------------------------------------

    def up(self, pki: Pki, api: Api, deadline: float) -> None:
        self.preflight()
        t0 = time.monotonic()
        kubeconfigs = self._prepare(pki)
        self._network()
        self._cgroups()
        running = self.running()
        if "api-relay" not in running:
            self._start("api-relay", nodeconf.relay_argv(self.lay), netns=False)
        if "containerd" not in running:
            self._start("containerd", ["containerd", "--config", str(self.lay.containerd_config)])
            self._wait(self._containerd_answers, "containerd", deadline, log="containerd")
        self._images()
        if "kubelet" not in running:
            hostguard.register(self.s.home)
            rec = self._start("kubelet", nodeconf.kubelet_argv(self.lay, kubeconfigs["kubelet"]))
            hostguard.set_holder_pid(self.s.home, rec.pid)
        if "kube-proxy" not in running:
            self._start("kube-proxy", nodeconf.kube_proxy_argv(self.lay))
        self._wait(lambda: self.ready(api), f"node {REAL_NODE_NAME} Ready", deadline, log="kubelet")
        # kube-router finds its node by name: start it once the kubelet registered the node, and
        # wait for its first sync (its iptables chains in the node's namespace).
        if "kube-router" not in running:
            self._start("kube-router", nodeconf.kube_router_argv(self.lay, kubeconfigs["kube-router"]))
        self._wait(self.firewall_synced, "kube-router's first sync", deadline, log="kube-router")
        self.say(f"spe-dev: real node {REAL_NODE_NAME} Ready {time.monotonic() - t0:.1f}s after its start "
                 f"(netns {self.lay.netns}, node IP {self.s.node_plan.node_ip}, pods {self.s.node_plan.pod_cidr})")

    def _prepare(self, pki: Pki) -> dict[str, Path]:
        lay = self.lay
        for d in (lay.sock_dir, lay.cni_conf_dir, lay.kubelet_dir, lay.dir / "pod-logs",
                  lay.dir / "kubeconfigs", lay.containerd_dir):
            d.mkdir(parents=True, exist_ok=True)
        kubeconfigs = {}
        for name, stem in (("kubelet", f"kubelet-{REAL_NODE_NAME}"), ("kube-proxy", "kube-proxy"),
                           ("kube-router", "kube-router")):
            path = lay.dir / "kubeconfigs" / f"{name}.kubeconfig"
            write_kubeconfig(path, lay.api_server, pki, stem)
            kubeconfigs[name] = path
        for path, content in nodeconf.render(lay, pki, kubeconfigs).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != content:
                path.write_text(content)
        return kubeconfigs

    def _network(self) -> None:
        lay, plan = self.lay, self.s.node_plan
        # Refuse to share addresses with another home in this namespace.
        for ifname, addr in _outer_addresses():
            if addr.split("/")[0] == plan.outer_ip and ifname != lay.veth_outer:
                raise NodeError(
                    f"{plan.outer_ip} is already on {ifname} (another spe-dev home's real node?); "
                    "give this home another slot (SPE_DEV_PORT_OFFSET or SPE_DEV_NODE_SLOT)")
        if not netns_exists(lay.netns):
            ip("netns", "add", lay.netns)
        ip("link", "set", "lo", "up", netns=lay.netns)
        if not link_exists(lay.veth_outer):
            if link_exists(lay.veth_node, netns=lay.netns):
                ip("link", "del", lay.veth_node, netns=lay.netns)
            ip("link", "add", lay.veth_outer, "type", "veth", "peer", "name", lay.veth_node,
               "netns", lay.netns)
        ip("addr", "replace", f"{plan.outer_ip}/{plan.link_prefix}", "dev", lay.veth_outer)
        ip("link", "set", lay.veth_outer, "up")
        ip("addr", "replace", f"{plan.node_ip}/{plan.link_prefix}", "dev", lay.veth_node, netns=lay.netns)
        ip("link", "set", lay.veth_node, "up", netns=lay.netns)
        # The pods' bridge exists before the first pod (the CNI bridge plugin reuses it), so
        # the route below has its gateway from the start.
        if not link_exists(lay.bridge, netns=lay.netns):
            ip("link", "add", lay.bridge, "type", "bridge", netns=lay.netns)
        ip("addr", "replace", f"{plan.pod_gateway}/24", "dev", lay.bridge, netns=lay.netns)
        ip("link", "set", lay.bridge, "up", netns=lay.netns)
        ip("route", "replace", plan.pod_cidr, "via", plan.node_ip, "dev", lay.veth_outer)
        # Everything else in the lab range goes nowhere from here, never out of a real interface.
        ip("route", "replace", "blackhole", LAB_NET)
        # The node's namespace forwards between its bridge and its veth (the CNI bridge plugin
        # would set this too); br_netfilter makes bridged pod-to-pod traffic pass iptables,
        # where kube-router's NetworkPolicy rules are.
        for key, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1")):
            proc = run_in(lay.netns, ["sh", "-c", f"echo {value} > /proc/sys/{key}"])
            if proc.returncode != 0:
                raise NodeError(f"setting {key} in {lay.netns}: {proc.stderr.strip()}")
        # Fail closed: forwarded traffic that no rule accepts is dropped. kube-router accepts
        # explicitly what the policies allow (its mark 0x20000) for every pod it knows, so a pod
        # it has not seen yet (started while it is down) reaches nothing instead of everything.
        proc = run_in(lay.netns, ["iptables", "-P", "FORWARD", "DROP"])
        if proc.returncode != 0:
            raise NodeError(f"iptables -P FORWARD DROP in {lay.netns}: {proc.stderr.strip()}")

    def _cgroups(self) -> None:
        for ctl in _cgroup_v1_dirs():
            d = ctl / self.lay.cgroup_root.lstrip("/")
            if d.is_dir():
                continue
            d.mkdir()
            if ctl.name == "cpuset":
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((ctl / f).read_text())

    def _images(self) -> None:
        """Import the pause image and the project's current images (once per archive); drop
        older builds of them from containerd; write name -> ref@digest to images.json."""
        have = nodeimages.image_digests(self.lay)
        wanted = {"pause": (nodeconf.PAUSE_IMAGE, nodeimages.pause_archive(self.s))}
        wanted.update(nodeimages.local_image_archives(self.s.images_dir))
        for name, (ref, archive) in wanted.items():
            marker = archive.with_suffix(archive.suffix + ".imported-" + self.s.home_tag)
            if ref in have and marker.exists():
                continue
            t = time.monotonic()
            nodeimages.import_archive(self.lay, archive)
            marker.touch()
            self.say(f"spe-dev: imported {ref} into the node's containerd in {time.monotonic() - t:.1f}s")
        # A pod names an image by digest (repo@sha256:...): the CRI finds it only under that
        # name, which a pull would have created and an import does not.
        have = nodeimages.image_digests(self.lay)
        for ref, _ in wanted.values():
            by_digest = f"{ref.rsplit(':', 1)[0]}@{have.get(ref)}"
            if ref in have and by_digest not in have:
                nodeimages.tag(self.lay, ref, by_digest)
        current = {ref for ref, _ in wanted.values()}
        keep = current | {f"{r.rsplit(':', 1)[0]}@{have[r]}" for r in current if r in have}
        stale = [r for r in have if r.startswith("localhost/spe-") and r not in keep
                 and any(r.split("@")[0].rsplit(":", 1)[0] == c.rsplit(":", 1)[0] for c in current)]
        nodeimages.remove_images(self.lay, stale)
        digests = nodeimages.image_digests(self.lay)
        self.lay.images_file.write_text(json.dumps({
            "images": {name: f"{ref.rsplit(':', 1)[0]}@{digests[ref]}" for name, (ref, _) in wanted.items()
                       if ref in digests},
            "containerd": digests,
        }, indent=2, sort_keys=True))

    def _start(self, name: str, argv: list[str], netns: bool = True):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": str(self.lay.dir)}
        rec = self.table.start(name, argv, env=env, cwd=self.lay.dir,
                               preexec_fn=enter_netns(self.lay.netns) if netns else None)
        self.say(f"spe-dev: started {name} (pid {rec.pid})")
        time.sleep(0.05)
        if not rec.alive():
            time.sleep(0.5)
            raise NodeError(f"{name} exited at once; log {self.table.log_path(name)}:\n"
                            + _log_tail(self.table.log_path(name)))
        return rec

    def _wait(self, check: Callable[[], bool], what: str, deadline: float, log: str | None = None) -> None:
        while not check():
            for name in ORDER:
                rec = self.table.get(name)
                if rec is not None and not rec.alive():
                    raise NodeError(f"{name} died while waiting for {what}; log "
                                    f"{self.table.log_path(name)}:\n" + _log_tail(self.table.log_path(name)))
            if time.monotonic() > deadline:
                hint = f"; log {self.table.log_path(log)}:\n{_log_tail(self.table.log_path(log))}" if log else ""
                raise NodeError(f"timed out waiting for {what}{hint}")
            time.sleep(0.2)

    # ----- down ---------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop and remove everything of the node; returns what it did, for the log."""
        done: list[str] = []
        lay = self.lay
        if not (lay.dir.exists() or netns_exists(lay.netns) or link_exists(lay.veth_outer)):
            return done
        for name in ("kube-router", "kube-proxy", "kubelet"):
            if self.table.stop(name):
                done.append(f"stopped {name}")
        # The pods' processes: everything left in the node's cgroups, then the shims of this
        # containerd (they outlive containerd by design).
        killed = self._kill_cgroup_procs()
        if killed:
            done.append(f"killed {killed} container processes")
        if self.table.stop("containerd"):
            done.append("stopped containerd")
        shims = [pid for pid, argv in processes_mentioning(str(lay.containerd_sock))
                 if any("containerd-shim" in a for a in argv[:1])]
        for pid in shims:
            _kill(pid)
        if shims:
            done.append(f"killed {len(shims)} containerd shims")
        if self.table.stop("api-relay"):
            done.append("stopped api-relay")
        n = _unmount_under(self.s.home)
        if n:
            done.append(f"unmounted {n} mounts")
        if link_exists(lay.veth_outer):
            ip("link", "del", lay.veth_outer, check=False)
            done.append(f"deleted {lay.veth_outer}")
        if netns_exists(lay.netns):
            ip("netns", "del", lay.netns, check=False)
            done.append(f"deleted netns {lay.netns}")
        if netns_exists(lay.inet_netns):  # a test's fake internet left by an interrupted run
            ip("netns", "del", lay.inet_netns, check=False)
            done.append(f"deleted netns {lay.inet_netns}")
        if not _other_spe_links():
            if ip("route", "del", "blackhole", LAB_NET, check=False).returncode == 0:
                done.append(f"deleted blackhole {LAB_NET}")
        self._kill_cgroup_procs()
        if self._remove_cgroups():
            done.append(f"removed cgroups {lay.cgroup_root}")
        done += hostguard.release(self.s.home)
        # Per-run state (not the images or containerd's content store: they make the next up fast).
        for d in (lay.kubelet_dir, lay.dir / "pod-logs", lay.dir / "cni" / "ipam", lay.sock_dir,
                  lay.containerd_dir / "state", lay.containerd_dir / "runc"):
            shutil.rmtree(d, ignore_errors=True)
        return done

    def _cgroup_dirs(self) -> list[Path]:
        """This node's cgroup in every hierarchy, v1 and the unified one (runc makes one there)."""
        out = []
        for ctl in _cgroup_v1_dirs(with_unified=True):
            d = ctl / self.lay.cgroup_root.lstrip("/")
            if d.is_dir():
                out.append(d)
        return out

    def _kill_cgroup_procs(self) -> int:
        killed = 0
        for _round in range(20):
            pids = set()
            for d in self._cgroup_dirs():
                # os.walk, not Path.rglob: the kubelet and runc remove pod cgroups while we walk,
                # and rglob raises on a directory that vanished under it (os.walk skips it).
                for procs in (Path(top, "cgroup.procs") for top, _dirs, files in os.walk(d) if "cgroup.procs" in files):
                    try:
                        pids.update(int(x) for x in procs.read_text().split())
                    except OSError:
                        pass
            if not pids:
                return killed
            for pid in pids:
                _kill(pid, wait=False)
                killed += 1
            time.sleep(0.1)
        return killed

    def _remove_cgroups(self) -> bool:
        removed = False
        for d in self._cgroup_dirs():
            subs = [Path(top, name) for top, dirs, _files in os.walk(d) for name in dirs]
            for sub in sorted(subs, key=lambda p: len(p.parts), reverse=True):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                d.rmdir()
                removed = True
            except OSError:
                pass
        return removed

    # ----- status -------------------------------------------------------------------------

    def status_lines(self) -> tuple[bool, list[str], int]:
        lines, total, ok = [], 0, True
        for name in ORDER:
            rec = self.table.running(name)
            if rec is None:
                ok = False
                lines.append(f"{name:<24} stopped")
                continue
            rss = rss_kib(rec.pid) or 0
            total += rss
            lines.append(f"{name:<24} pid {rec.pid:<8} {'running':<10} rss {rss / 1024:7.1f} MiB")
        shims = [pid for pid, argv in processes_mentioning(str(self.lay.containerd_sock))
                 if argv and "containerd-shim" in argv[0]]
        shim_rss = sum(rss_kib(p) or 0 for p in shims)
        pods_rss = self._cgroup_rss()
        total += shim_rss + pods_rss
        lines.append(f"{'containerd shims':<24} {len(shims):<12} {'':<10} rss {shim_rss / 1024:7.1f} MiB")
        lines.append(f"{'pod processes':<24} {'':<12} {'':<10} rss {pods_rss / 1024:7.1f} MiB")
        return ok, lines, total

    def _cgroup_rss(self) -> int:
        total = 0
        for d in self._cgroup_dirs():
            for procs in d.rglob("cgroup.procs"):
                try:
                    pids = [int(x) for x in procs.read_text().split()]
                except OSError:
                    continue
                total += sum(rss_kib(p) or 0 for p in pids)
            break  # one hierarchy lists every process once
        return total


def _cgroup_v1_dirs(with_unified: bool = False) -> list[Path]:
    """The roots of the cgroup hierarchies: each v1 controller's (and the hybrid layout's
    unified one), or on a pure cgroup v2 machine the one root (not tested here: this VM is v1)."""
    if not CGROUP_FS.is_dir():
        return []
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]
    out = []
    for d in sorted(CGROUP_FS.iterdir()):
        if d.name == "unified" and not with_unified:
            continue
        if d.is_dir() and not d.is_symlink() and (d / "cgroup.procs").exists():
            out.append(d)
    return out


def _kill(pid: int, wait: bool = True) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if wait:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and cmdline(pid) is not None:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)


def _unmount_under(root: Path) -> int:
    """Lazily unmount every mount point below ``root`` (deepest first); returns how many."""
    prefix = str(root.resolve()) + "/"
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                points.append(mp)
    count = 0
    for mp in sorted(set(points), key=len, reverse=True):
        if subprocess.run(["umount", "-l", mp], capture_output=True).returncode == 0:
            count += 1
    return count


def _outer_addresses() -> list[tuple[str, str]]:
    from .netns import addresses
    return addresses()


def _other_spe_links() -> bool:
    """True when another home's node veth is still in this namespace (it needs the blackhole)."""
    from .netns import ip_json
    return any(link["ifname"].startswith("spe") and link["ifname"].endswith("o")
               for link in ip_json("link", "show"))


def node_running_anywhere(s: Settings) -> bool:
    lay = NodeLayout(s)
    return netns_exists(lay.netns) or link_exists(lay.veth_outer)


__all__ = ["RealNode", "NodeError", "ORDER", "NetError", "node_running_anywhere"]
