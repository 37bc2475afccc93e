"""Starting, stopping and inspecting the local control plane of one spe-dev home."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from . import components
from .api import Api, HttpError
from .kubeconfig import write_kubeconfig
from .nodes import NODES, node_manifest
from .pki import Pki, ensure_pki
from .procs import ProcessTable, rss_kib
from .realnode import NodeError, RealNode
from .settings import LOOPBACK, REAL_NODE_NAME, SERVICE_CIDR, Settings

Say = Callable[[str], None]


class SpeDevError(Exception):
    """A failure with a message meant for the person running spe-dev."""


def first_service_ip() -> str:
    base, _ = SERVICE_CIDR.split("/")
    a, b, c, d = (int(x) for x in base.split("."))
    return f"{a}.{b}.{c}.{d + 1}"


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Serialise up/down of one home across processes."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _state_file(s: Settings) -> Path:
    return s.home / "cluster.json"


def effective_settings(s: Settings) -> Settings:
    """The settings a running cluster was started with (its ports), else ``s`` itself."""
    try:
        saved = json.loads(_state_file(s).read_text())
    except (FileNotFoundError, ValueError):
        return s
    table = ProcessTable(s.run_dir, s.log_dir)
    if any(table.running(name) for name in components.ORDER):
        return replace(s, ports={**s.ports, **saved.get("ports", {})},
                       real_node=saved.get("real_node", s.real_node),
                       node_slot=saved.get("node_slot", s.node_slot))
    return s


def admin_api(s: Settings, timeout: float = 10.0) -> Api:
    pki = Pki(s.pki)
    return Api(s.server, str(pki.ca_cert), str(pki.cert("admin")), str(pki.key("admin")), timeout=timeout)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _insecure_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    # The components' own serving certificates are self-signed; these are loopback health checks.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class ControlPlane:
    def __init__(self, settings: Settings, say: Say = print):
        self.s = settings
        self.say = say
        self.table = ProcessTable(settings.run_dir, settings.log_dir)

    @property
    def node(self) -> RealNode:
        return RealNode(self.s, self.table, say=self.say)

    # ----- inspection -----------------------------------------------------------------

    def running(self) -> dict[str, int]:
        """name -> pid of every component of ours that is alive."""
        out = {}
        for name in components.ORDER:
            rec = self.table.running(name)
            if rec:
                out[name] = rec.pid
        return out

    def healthy(self, name: str) -> bool:
        ports = self.s.ports
        try:
            if name == "etcd":
                with urllib.request.urlopen(f"http://{LOOPBACK}:{ports['etcd']}/health", timeout=2) as r:
                    return json.loads(r.read()).get("health") == "true"
            if name == "kube-apiserver":
                status, _ = admin_api(self.s, timeout=3).raw("GET", "/readyz")
                return status == 200
            if name == "kube-controller-manager":
                return _insecure_get(f"https://{LOOPBACK}:{ports['controller_manager']}/healthz")[0] == 200
            if name == "kube-scheduler":
                return _insecure_get(f"https://{LOOPBACK}:{ports['scheduler']}/healthz")[0] == 200
            if name == "kwok":
                return _insecure_get(f"http://{LOOPBACK}:{ports['kwok']}/healthz")[0] == 200
        except (OSError, ValueError, ssl.SSLError):
            return False
        return False

    def is_up(self) -> bool:
        if not (len(self.running()) == len(components.ORDER) and self.healthy("kube-apiserver")):
            return False
        return not self.s.real_node or self._node_up()

    def _node_up(self) -> bool:
        from .realnode import ORDER as NODE_ORDER
        return len(self.node.running()) == len(NODE_ORDER) and self.node.ready(admin_api(self.s))

    def export_line(self) -> str:
        return f"export KUBECONFIG={self.s.admin_kubeconfig}"

    # ----- up -----------------------------------------------------------------------------

    def up(self, fresh: bool = False) -> None:
        missing = self.s.missing_binaries()
        if missing:
            raise SpeDevError(
                f"control-plane binaries missing in {self.s.bin_dir}: {', '.join(missing)}; "
                "run `make controlplane` first"
            )
        if self.s.real_node:
            try:
                self.node.preflight()
            except NodeError as err:
                raise SpeDevError(str(err)) from err
        t0 = time.monotonic()
        with home_lock(self.s.home):
            self.s = effective_settings(self.s)
            self.table = ProcessTable(self.s.run_dir, self.s.log_dir)
            running = self.running()
            if len(running) == len(components.ORDER) and self.healthy("kube-apiserver") and (
                    not self.s.real_node or self._node_up()):
                pids = " ".join(f"{n}={p}" for n, p in {**running, **(
                    self.node.running() if self.s.real_node else {})}.items())
                self.say(f"spe-dev: already running ({pids})")
                self.say(self.export_line())
                return
            if fresh and not running:
                shutil.rmtree(self.s.etcd_data, ignore_errors=True)
            pki = self._prepare()
            deadline = t0 + self.s.ready_timeout
            argvs = {
                "etcd": components.etcd_argv(self.s),
                "kube-apiserver": components.apiserver_argv(self.s, pki),
                "kube-controller-manager": components.controller_manager_argv(self.s, pki),
                "kube-scheduler": components.scheduler_argv(self.s),
                "kwok": components.kwok_argv(self.s),
            }
            busy = [f"{LOOPBACK}:{port} ({name})" for name in components.ORDER if name not in running
                    for port in self._ports_of(name) if _port_in_use(port)]
            if busy:
                raise SpeDevError(
                    f"ports already in use by other programs: {', '.join(busy)}; stop them or "
                    "choose other ports (SPE_DEV_PORT_OFFSET or SPE_DEV_<COMPONENT>_PORT)"
                )
            for name in components.ORDER:
                if name in running:
                    continue
                self._start(name, argvs[name], deadline)
                if name == "kube-apiserver":
                    self._create_nodes()
            self._wait_cluster_ready(deadline)
            if self.s.real_node:
                try:
                    self.node.up(pki, admin_api(self.s), deadline)
                except (NodeError, OSError, RuntimeError) as err:
                    raise SpeDevError(f"real node {REAL_NODE_NAME}: {err}") from err
        self.say(f"spe-dev: control plane ready in {time.monotonic() - t0:.1f}s ({self.s.server})")
        self.say(self.export_line())

    def _prepare(self) -> Pki:
        s = self.s
        for d in (s.run_dir, s.log_dir, s.home / "kubeconfigs"):
            d.mkdir(parents=True, exist_ok=True)
        pki = ensure_pki(s.pki, first_service_ip(), (s.node_plan.outer_ip,) if s.real_node else ())
        write_kubeconfig(s.admin_kubeconfig, s.server, pki, "admin")
        for stem in ("controller-manager", "scheduler", "kwok"):
            write_kubeconfig(s.kubeconfig_for(stem), s.server, pki, stem)
        _state_file(s).write_text(json.dumps({"ports": s.ports, "server": s.server,
                                              "bin_dir": str(s.bin_dir), "real_node": s.real_node,
                                              "node_slot": s.node_slot}, indent=2))
        return pki

    def _ports_of(self, name: str) -> list[int]:
        keys = {"etcd": ["etcd", "etcd_peer"], "kube-apiserver": ["apiserver"],
                "kube-controller-manager": ["controller_manager"], "kube-scheduler": ["scheduler"],
                "kwok": ["kwok"]}[name]
        return [self.s.ports[k] for k in keys]

    def _start(self, name: str, argv: list[str], deadline: float) -> None:
        for port in self._ports_of(name):
            if _port_in_use(port):
                raise SpeDevError(
                    f"{name}: port {LOOPBACK}:{port} is already in use by another program; "
                    "stop it or choose other ports (SPE_DEV_PORT_OFFSET or SPE_DEV_<COMPONENT>_PORT)"
                )
        env = None
        if name == "kwok":
            # kwok also reads ~/.kwok/kwok.yaml when present; give it a home of its own.
            kwok_home = self.s.home / "kwok-home"
            kwok_home.mkdir(exist_ok=True)
            env = {"HOME": str(kwok_home), "PATH": "/usr/bin:/bin"}
        t = time.monotonic()
        rec = self.table.start(name, argv, env=env)
        self.say(f"spe-dev: started {name} (pid {rec.pid}), waiting until healthy")
        while not self.healthy(name):
            if not rec.alive():
                raise SpeDevError(
                    f"{name} exited during start-up; log {self.table.log_path(name)}:\n"
                    + _log_tail(self.table.log_path(name))
                )
            if time.monotonic() > deadline:
                raise SpeDevError(
                    f"{name} not healthy before the deadline; log {self.table.log_path(name)}:\n"
                    + _log_tail(self.table.log_path(name))
                )
            time.sleep(0.2)
        self.say(f"spe-dev: {name} healthy after {time.monotonic() - t:.1f}s")

    def _create_nodes(self) -> None:
        api = admin_api(self.s)
        for node in NODES:
            try:
                api.create("/api/v1/nodes", node_manifest(node))
            except HttpError as err:
                if err.status != 409:
                    raise SpeDevError(f"creating node {node.name}: {err}") from err

    def _wait_cluster_ready(self, deadline: float) -> None:
        api = admin_api(self.s)
        wanted = {n.name for n in NODES}
        pending = "nodes Ready"
        while True:
            try:
                if pending == "nodes Ready":
                    nodes = api.get("/api/v1/nodes")["items"]
                    ready = {
                        n["metadata"]["name"] for n in nodes
                        if any(c["type"] == "Ready" and c["status"] == "True"
                               for c in n.get("status", {}).get("conditions", []))
                    }
                    if wanted <= ready:
                        pending = "default ServiceAccount"
                        continue
                else:
                    api.get("/api/v1/namespaces/default/serviceaccounts/default")
                    return
            except HttpError as err:
                if err.status != 404:
                    raise SpeDevError(f"waiting for {pending}: {err}") from err
            except OSError:
                pass
            for name, _pid in self._dead_components():
                raise SpeDevError(f"{name} died; log {self.table.log_path(name)}:\n"
                                  + _log_tail(self.table.log_path(name)))
            if time.monotonic() > deadline:
                raise SpeDevError(f"timed out waiting for {pending}; logs in {self.s.log_dir}")
            time.sleep(0.25)

    def _dead_components(self) -> list[tuple[str, int]]:
        out = []
        for name in components.ORDER:
            rec = self.table.get(name)
            if rec is not None and not rec.alive():
                out.append((name, rec.pid))
        return out

    # ----- down ---------------------------------------------------------------------------

    def down(self, purge: bool = False) -> list[str]:
        stopped = []
        with home_lock(self.s.home):
            # The real node first (whether or not this invocation asked for one: a node left
            # from an earlier `up` is always taken down).
            for line in self.node.down():
                self.say(f"spe-dev: node: {line}")
                stopped.append(line)
            # Open Cluster Management's processes (spe_dev.ocm) before the API server they use.
            for rec in self.table.records():
                if rec.name.startswith("ocm-") and self.table.stop(rec.name):
                    stopped.append(rec.name)
                    self.say(f"spe-dev: stopped {rec.name}")
            for name in reversed(components.ORDER):
                if self.table.stop(name):
                    stopped.append(name)
                    self.say(f"spe-dev: stopped {name}")
            if purge:
                shutil.rmtree(self.s.etcd_data, ignore_errors=True)
        if not stopped:
            self.say("spe-dev: nothing was running")
        return stopped

    # ----- status -------------------------------------------------------------------------

    def status_lines(self) -> tuple[bool, list[str]]:
        self.s = effective_settings(self.s)
        self.table = ProcessTable(self.s.run_dir, self.s.log_dir)
        lines = [f"home: {self.s.home}", f"binaries: {self.s.bin_dir}"]
        total = 0
        all_up = True
        for name in components.ORDER:
            rec = self.table.running(name)
            if rec is None:
                all_up = False
                lines.append(f"{name:<24} stopped")
                continue
            rss = rss_kib(rec.pid) or 0
            total += rss
            health = "healthy" if self.healthy(name) else "UNHEALTHY"
            all_up = all_up and health == "healthy"
            lines.append(f"{name:<24} pid {rec.pid:<8} {health:<10} rss {rss / 1024:7.1f} MiB")
        if self.s.real_node:
            node_ok, node_lines, node_total = self.node.status_lines()
            lines.append(f"real node {REAL_NODE_NAME} (netns {self.node.lay.netns}):")
            lines += node_lines
            total += node_total
            all_up = all_up and node_ok
        lines.append(f"{'total rss':<24} {'':<12} {'':<10} rss {total / 1024:7.1f} MiB")
        if all_up:
            lines.append(f"server: {self.s.server}")
            lines.append(self.export_line())
        return all_up, lines
