"""Open Cluster Management for spe-dev's named clusters: the hub on central, the klusterlet
agent on a node, and the join between them (docs/federation.md).

Everything runs as host processes of the two homes (pid files and logs beside the control
plane's), from the one binary ``tests/controlplane/build-ocm.sh`` builds:

central (its home's run/):  ocm-registration-controller, ocm-work-manager, ocm-placement-controller
node (its home's run/):     ocm-klusterlet-agent  (registration + work agents, "singleton" mode)

Only the agent dials across: to central's API server, with a bootstrap token first and then the
client certificate central's CSR signer issued it. Nothing on central dials the node.

Join, as ``clusteradm join``/``accept`` would do it: a bootstrap ServiceAccount on central with
OCM's bootstrap ClusterRole, a token of it in a bootstrap kubeconfig for the agent; the agent
creates its ManagedCluster and a CSR; we approve that CSR and set ``hubAcceptsClient``, plus the
SPE's labels (tier, datasets held) on the ManagedCluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from .api import HttpError
from .cluster import SpeDevError, admin_api, effective_settings
from .pki import Pki
from .procs import ProcessTable, rss_kib
from .settings import LOOPBACK, Settings, repo_root

Say = Callable[[str], None]

# Keep in step with tests/controlplane/build-ocm.sh (same files, same order).
OCM_KEY_FILES = ("ocm/go.mod", "ocm/go.sum", "ocm/main.go", "build-ocm.sh")
HUB_COMPONENTS = ("ocm-registration-controller", "ocm-work-manager", "ocm-placement-controller")
AGENT = "ocm-klusterlet-agent"
HUB_NAMESPACE = "open-cluster-management-hub"
BOOTSTRAP_NAMESPACE = "open-cluster-management"
BOOTSTRAP_SA = "agent-registration-bootstrap"
AGENT_NAMESPACE = "open-cluster-management-agent"
# Health ports (library-go's serving endpoint), on loopback: the API server's port + these.
PORT_SHIFT = {"ocm-registration-controller": 11, "ocm-work-manager": 12, "ocm-placement-controller": 13,
              AGENT: 14}
BOOTSTRAP_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "open-cluster-management:bootstrap"},
    "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
         "verbs": ["create", "get", "list", "watch"]},
        {"apiGroups": ["cluster.open-cluster-management.io"], "resources": ["managedclusters"],
         "verbs": ["get", "create", "list", "watch"]},
        {"apiGroups": ["cluster.open-cluster-management.io"], "resources": ["managedclustersets/join"],
         "verbs": ["create"]},
    ],
}


def ocm_dir(env: Mapping[str, str] | None = None) -> Path:
    """The build output for the current module files (``bin/ocm``, ``crds/hub``, ``crds/node``)."""
    env = os.environ if env is None else env
    if env.get("SPE_OCM_DIR"):
        return Path(env["SPE_OCM_DIR"]).resolve()
    root = repo_root()
    here = root / "tests" / "controlplane"
    digest = hashlib.sha256()
    for name in OCM_KEY_FILES:
        digest.update((here / name).read_bytes())
    cache = Path(env.get("SPE_OCM_CACHE") or root / ".cache" / "ocm")
    return cache / digest.hexdigest()[:16]


@dataclass
class Side:
    """One cluster of the federation, as this module drives it."""

    settings: Settings

    @property
    def table(self) -> ProcessTable:
        return ProcessTable(self.settings.run_dir, self.settings.log_dir)

    @property
    def kubeconfig(self) -> Path:
        return self.settings.admin_kubeconfig

    @property
    def ocm_home(self) -> Path:
        return self.settings.home / "ocm"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.settings.binary("kubectl")), *args], input=input, capture_output=True,
                              text=True, env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)), timeout=120)
        if check and proc.returncode != 0:
            raise SpeDevError(f"kubectl {' '.join(args)} on {self.settings.home.name} failed: {proc.stderr.strip()}")
        return proc

    def port(self, component: str) -> int:
        return self.settings.ports["apiserver"] + PORT_SHIFT[component]


class Federation:
    def __init__(self, central: Settings, ocm: Path | None = None, say: Say = print):
        self.central = Side(effective_settings(central))
        self.ocm = ocm or ocm_dir()
        self.say = say

    @property
    def binary(self) -> Path:
        return self.ocm / "bin" / "ocm"

    def _check_built(self) -> None:
        if not (self.ocm / "complete").is_file():
            raise SpeDevError(f"Open Cluster Management is not built in {self.ocm}: run "
                              "`bash tests/controlplane/build-ocm.sh` (make test does) first")

    # ----- the hub on central ------------------------------------------------------------

    def hub_up(self, timeout: float = 180) -> None:
        self._check_built()
        c = self.central
        c.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(self.ocm / "crds" / "hub"))
        c.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(self.ocm / "crds" / "hub"))
        docs = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HUB_NAMESPACE}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BOOTSTRAP_NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": BOOTSTRAP_SA, "namespace": BOOTSTRAP_NAMESPACE}},
            BOOTSTRAP_ROLE,
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "open-cluster-management:bootstrap:agent-registration"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": BOOTSTRAP_ROLE["metadata"]["name"]},
             "subjects": [{"kind": "ServiceAccount", "name": BOOTSTRAP_SA, "namespace": BOOTSTRAP_NAMESPACE}]},
        ]
        c.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(docs))
        sub = {"ocm-registration-controller": ["registration-controller"],
               "ocm-work-manager": ["work-manager"],
               "ocm-placement-controller": ["placement-controller"]}
        for name in HUB_COMPONENTS:
            if c.table.running(name):
                continue
            argv = [str(self.binary), *sub[name], f"--kubeconfig={c.kubeconfig}", f"--namespace={HUB_NAMESPACE}",
                    "--disable-leader-election", f"--listen={LOOPBACK}:{c.port(name)}"]
            rec = c.table.start(name, argv, env={"HOME": str(c.ocm_home), "PATH": "/usr/bin:/bin"})
            self.say(f"spe-dev: started {name} (pid {rec.pid}) on {c.settings.home.name}")
        deadline = time.monotonic() + timeout
        for name in HUB_COMPONENTS:
            self._wait_alive(c, name, deadline)

    def _wait_alive(self, side: Side, name: str, deadline: float, settle: float = 3.0) -> None:
        """A component is taken as up once it has stayed alive ``settle`` seconds."""
        rec = side.table.get(name)
        t0 = time.monotonic()
        while time.monotonic() - t0 < settle:
            if rec is None or not rec.alive():
                raise SpeDevError(f"{name} exited during start-up; log {side.table.log_path(name)}:\n"
                                  + _tail(side.table.log_path(name)))
            if time.monotonic() > deadline:
                raise SpeDevError(f"{name} did not start before the deadline")
            time.sleep(0.2)

    # ----- a node joins --------------------------------------------------------------------

    def join(self, node: Settings, name: str, labels: Mapping[str, str], timeout: float = 240,
             lease_seconds: int = 60) -> float:
        """Start the node's klusterlet agent and accept it at central; returns the seconds from the
        agent's start until central shows the node joined and available."""
        self._check_built()
        n = Side(effective_settings(node))
        c = self.central
        n.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(self.ocm / "crds" / "node"))
        n.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(self.ocm / "crds" / "node"))
        n.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": AGENT_NAMESPACE}}))
        n.ocm_home.mkdir(parents=True, exist_ok=True)
        bootstrap = n.ocm_home / "bootstrap.kubeconfig"
        token = c.kubectl("create", "token", BOOTSTRAP_SA, "-n", BOOTSTRAP_NAMESPACE, "--duration=24h").stdout.strip()
        _write_private(bootstrap, yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "hub",
            "clusters": [{"name": "hub", "cluster": {"server": c.settings.server,
                                                     "certificate-authority": str(Pki(c.settings.pki).ca_cert)}}],
            "users": [{"name": "bootstrap", "user": {"token": token}}],
            "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "bootstrap"}}]}))
        t0 = time.monotonic()
        api = admin_api(c.settings)
        if api.get_or_none(f"/apis/cluster.open-cluster-management.io/v1/managedclusters/{name}") is None:
            # Central does not know the node (first join, or central's store was reset): a hub
            # certificate left from before would skip the bootstrap and be refused.
            shutil.rmtree(n.ocm_home / "hub-kubeconfig", ignore_errors=True)
        if not n.table.running(AGENT):
            argv = [str(self.binary), "klusterlet-agent", f"--kubeconfig={n.kubeconfig}",
                    f"--spoke-cluster-name={name}", f"--bootstrap-kubeconfig={bootstrap}",
                    f"--hub-kubeconfig-dir={n.ocm_home / 'hub-kubeconfig'}",
                    # the work agent reads the hub kubeconfig the registration agent writes there
                    f"--workload-source-config={n.ocm_home / 'hub-kubeconfig' / 'kubeconfig'}",
                    f"--namespace={AGENT_NAMESPACE}", "--disable-leader-election",
                    f"--listen={LOOPBACK}:{n.port(AGENT)}",
                    f"--cluster-healthcheck-period={max(5, lease_seconds // 4)}s",
                    "--status-sync-interval=2s"]
            rec = n.table.start(AGENT, argv, env={"HOME": str(n.ocm_home), "PATH": "/usr/bin:/bin"})
            self.say(f"spe-dev: started {AGENT} (pid {rec.pid}) on {n.settings.home.name}, dialling "
                     f"{c.settings.server}")
        deadline = time.monotonic() + timeout
        accepted = False
        while True:
            rec = n.table.get(AGENT)
            if rec is None or not rec.alive():
                raise SpeDevError(f"{AGENT} exited; log {n.table.log_path(AGENT)}:\n" + _tail(n.table.log_path(AGENT)))
            for csr in api.get("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]:
                csr_labels = csr["metadata"].get("labels") or {}
                conds = {x["type"] for x in (csr.get("status") or {}).get("conditions") or []}
                if csr_labels.get("open-cluster-management.io/cluster-name") == name and not conds:
                    c.kubectl("certificate", "approve", csr["metadata"]["name"])
            mc = api.get_or_none(f"/apis/cluster.open-cluster-management.io/v1/managedclusters/{name}")
            if mc is not None and not accepted:
                patch = {"spec": {"hubAcceptsClient": True, "leaseDurationSeconds": lease_seconds},
                         "metadata": {"labels": dict(labels)}}
                api.call("PATCH", f"/apis/cluster.open-cluster-management.io/v1/managedclusters/{name}", patch,
                         content_type="application/merge-patch+json")
                accepted = True
            if mc is not None and _condition(mc, "ManagedClusterConditionAvailable") == "True" and \
                    _condition(mc, "ManagedClusterJoined") == "True":
                took = time.monotonic() - t0
                self.say(f"spe-dev: {name} joined {c.settings.home.name} in {took:.1f}s")
                return took
            if time.monotonic() > deadline:
                raise SpeDevError(f"{name} did not join before the deadline; agent log "
                                  f"{n.table.log_path(AGENT)}:\n" + _tail(n.table.log_path(AGENT)))
            time.sleep(0.5)

    def label(self, name: str, labels: Mapping[str, str | None]) -> None:
        admin_api(self.central.settings).call(
            "PATCH", f"/apis/cluster.open-cluster-management.io/v1/managedclusters/{name}",
            {"metadata": {"labels": dict(labels)}}, content_type="application/merge-patch+json")

    # ----- inspection and stop ------------------------------------------------------------

    @staticmethod
    def memory(side_settings: Settings) -> dict[str, float]:
        """MiB of RSS of each OCM process of a home."""
        table = ProcessTable(side_settings.run_dir, side_settings.log_dir)
        out = {}
        for name in (*HUB_COMPONENTS, AGENT):
            rec = table.running(name)
            if rec is not None:
                out[name] = (rss_kib(rec.pid) or 0) / 1024
        return out

    @staticmethod
    def stop(side_settings: Settings, names: tuple[str, ...] = (*HUB_COMPONENTS, AGENT)) -> list[str]:
        table = ProcessTable(side_settings.run_dir, side_settings.log_dir)
        return [name for name in names if table.stop(name)]


def _condition(obj: Mapping, type_: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond.get("status")
    return None


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def parse_labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpeDevError(f"label {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
