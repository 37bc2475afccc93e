"""The production install, end to end, on an empty cluster of its own (spe-dev with only its
real node): `spe-operator site` makes the installation's directory (settings file, generated
Secrets), `kubectl apply -k` installs everything as pods from the images built here, the
examples reach a Ready workspace with nothing applied by hand in between; the operator's two
replicas fail over; the uninstall leaves no webhook configuration behind.

The cluster is prepared as a one-node cluster would be: kwok's fake nodes removed and the real
node's test taint lifted, so every pod (the operator's, the gateway's, the workspace's) runs
there for real. The only site-specific lines beyond the settings file are the images (by
digest) and the API server's port (spe-dev's relay listens on the test server's port, not 443).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from spe_dev.cluster import effective_settings
from spe_dev.nodeconf import NODE_TAINT, NodeLayout
from spe_dev.settings import REAL_NODE_NAME, Settings
from tests.fixtures import waiting
from tests.fixtures.storage import STORAGE_CLASS, LoopbackProvisioner
from tests.workspace import factories as f

pytestmark = [pytest.mark.install, pytest.mark.timeout(2400)]   # a cluster of its own, images imported

ROOT = Path(__file__).resolve().parents[2]
PORT_OFFSET = 400   # slot 4: clear of the dev (0), test (100), spe-dev's own (200) and demo (300) clusters
UP_TIMEOUT = 900    # a fresh containerd imports the operator, gateway and notebook images
NOTEBOOK, OPERATOR, EGRESS = "notebook-jupyterlab", "operator", "egress"


@dataclass
class InstallCluster:
    settings: Settings
    env: dict[str, str]
    images: dict[str, str]

    @property
    def kubeconfig(self) -> str:
        return str(self.settings.admin_kubeconfig)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120,
                input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.settings.binary("kubectl")), *args], capture_output=True, text=True,
                              timeout=timeout, input=input, env={**os.environ, "KUBECONFIG": self.kubeconfig})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


def _spe_dev(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spe_dev", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def install_cluster() -> Iterator[InstallCluster]:
    # A short home: the kubelet binds unix sockets below it (at most 104 bytes).
    home = Path(tempfile.mkdtemp(prefix="spe-inst-", dir="/tmp")) / "home"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SPE_DEV_") and k != "KUBECONFIG"},
           "SPE_DEV_HOME": str(home), "SPE_DEV_PORT_OFFSET": str(PORT_OFFSET),
           "SPE_DEV_READY_TIMEOUT": "600"}
    up = _spe_dev(env, "up", "--fresh", timeout=UP_TIMEOUT)
    try:
        assert up.returncode == 0, f"spe-dev up failed:\n{up.stdout}\n{up.stderr}"
        s = effective_settings(Settings.from_env(env))
        images = json.loads(NodeLayout(s).images_file.read_text())["images"]
        missing = [n for n in (NOTEBOOK, OPERATOR, EGRESS) if n not in images]
        if missing:
            pytest.fail(f"images {missing} are not built: `bash images/build-local.sh` (make test does)",
                        pytrace=False)
        c = InstallCluster(s, env, images)
        # An empty one-node cluster: no fake nodes, the real node open to every pod.
        fake = [n["metadata"]["name"] for n in c.get("nodes")["items"] if n["metadata"]["name"] != REAL_NODE_NAME]
        c.kubectl("delete", "node", *fake)
        c.kubectl("taint", "node", REAL_NODE_NAME, f"{NODE_TAINT['key']}-")
        yield c
    finally:
        down = _spe_dev(env, "down", "--purge", timeout=300)
        shutil.rmtree(home.parent, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def provisioner(install_cluster) -> Iterator[LoopbackProvisioner]:
    """Stands in for the site's CSI driver: the encrypted class's volumes (hostPath on the node)."""
    p = LoopbackProvisioner(install_cluster.kubeconfig, storage_class=STORAGE_CLASS).start()
    try:
        yield p
    finally:
        p.stop()


def make_site(c: InstallCluster, directory: Path) -> Path:
    """What an installer does: `spe-operator site`, then edit settings.env (here: the test
    cluster's values); the images and the API server's port are this site's overlay lines."""
    proc = subprocess.run([sys.executable, "-m", "spe_operator.cli", "site", str(directory),
                           "--overlay", str(ROOT / "manifests" / "overlays" / "node"),
                           "--image", f"operator={c.images[OPERATOR]}", "--image", f"egress={c.images[EGRESS]}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    settings = (directory / "settings.env").read_text()
    for key, value in {"SPE_DEFAULT_STORAGE_CLASS": STORAGE_CLASS, "SPE_ENCRYPTED_STORAGE_CLASSES": STORAGE_CLASS,
                       "SPE_IDP_ISSUER_URL": "http://127.0.0.1:9/realms/spe"}.items():
        settings = "\n".join(f"{key}={value}" if line.startswith(key + "=") else line
                             for line in settings.splitlines()) + "\n"
    (directory / "settings.env").write_text(settings)
    kfile = directory / "kustomization.yaml"
    header = "".join(ln for ln in kfile.read_text().splitlines(keepends=True) if ln.startswith("#"))
    doc = yaml.safe_load(kfile.read_text())
    doc["patches"] = [{"target": {"kind": "NetworkPolicy", "name": "spe-system-allow-api-server"},
                       "patch": yaml.safe_dump([{"op": "add", "path": "/spec/egress/0/ports/-",
                                                 "value": {"protocol": "TCP", "port": c.settings.ports["apiserver"]}}])}]
    kfile.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return directory


# The suite's one wait (tests/fixtures/waiting.py), polling kubectl once a second.
wait_for = functools.partial(waiting.wait_for, interval=1.0)


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def operator_pods(c: InstallCluster) -> list[dict]:
    return [p for p in c.get("pods", "-n", "spe-system", "-l", "app.kubernetes.io/name=spe-operator")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def leader(c: InstallCluster) -> str:
    return c.get("lease", "-n", "spe-system", "spe-operator")["spec"].get("holderIdentity") or ""


def webhook_answers(c: InstallCluster) -> bool:
    """A dry-run DataPermit naming an unknown dataset: only the webhook refuses that."""
    body = f.permit("probe-webhook", datasets=["no-such-dataset"])
    proc = c.kubectl("create", "--dry-run=server", "-f", "-", check=False, input=json.dumps(body))
    return proc.returncode != 0 and "no-such-dataset" in proc.stderr and "failed calling webhook" not in proc.stderr


def diagnose(c: InstallCluster) -> str:
    out = [c.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout,
           c.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout[-6000:]]
    for pod in operator_pods(c):
        out.append(c.kubectl("logs", "-n", "spe-system", pod["metadata"]["name"], "--tail=60", check=False).stdout)
    return "\n".join(out)


def test_apply_k_to_a_ready_workspace_then_failover_then_uninstall(install_cluster, provisioner, tmp_path):
    c = install_cluster
    site = make_site(c, tmp_path / "site")
    t0 = time.monotonic()
    c.kubectl("apply", "--server-side", "-k", str(site), timeout=300)
    applied = time.monotonic()
    try:
        # Both replicas run; exactly one leads (Ready) and holds the Lease; the gateway is Ready.
        wait_for("one operator replica Ready", lambda: sum(map(_ready, operator_pods(c))) == 1
                 and len(operator_pods(c)) == 2, timeout=600)
        wait_for("the egress gateway Ready", lambda: any(map(_ready, c.get(
            "pods", "-n", "spe-system", "-l", "app.kubernetes.io/name=spe-egress")["items"])), timeout=300)
        (lead,) = [p["metadata"]["name"] for p in operator_pods(c) if _ready(p)]
        assert leader(c).startswith(lead + "_")
        assert all(p["spec"]["nodeName"] == REAL_NODE_NAME for p in operator_pods(c))
        # The webhook is served through its Service, by the leader.
        wait_for("the webhook to answer", lambda: webhook_answers(c), timeout=120)
        # The operator's preflight at start: Events on its namespace.
        events = c.get("events", "-n", "default", "--field-selector",
                       "involvedObject.kind=Namespace,involvedObject.name=spe-system")["items"]
        reasons = {e["message"].split(":")[0]: e["reason"] for e in events if e["reason"].startswith("Preflight")}
        assert reasons.get("storage-class") == "PreflightPassed", events
        assert reasons.get("audit-sink") == "PreflightPassed", events
        assert reasons.get("identity-provider") == "PreflightFailed", events   # no IdP in this cluster

        # The examples (the Tool's image: the notebook image built here, by digest).
        tool = f.tool("jupyterlab", gpu=False)
        tool["spec"]["image"] = c.images[NOTEBOOK]
        dataset = f.dataset("prostate-mr")
        permit = f.permit("install-demo", datasets=["prostate-mr"], gpus=[], cpu="4", memory="8Gi")
        ns = "spe-install-demo"
        ws = f.workspace("ws", ns, "install-demo", tool_name="jupyterlab", running=True, cpu="1", memory="2Gi")
        for body in (tool, dataset, permit):
            c.kubectl("apply", "-f", "-", input=json.dumps(body))
        wait_for(f"namespace {ns}", lambda: c.kubectl("get", "namespace", ns, check=False).returncode == 0, 120)
        wait_for(f"{ns}'s default ServiceAccount",
                 lambda: c.kubectl("get", "sa", "-n", ns, "default", check=False).returncode == 0, 60)
        c.kubectl("apply", "-f", "-", input=json.dumps(ws))

        def ws_ready():
            obj = c.get("workspace", "-n", ns, "ws")
            cond = [x for x in obj.get("status", {}).get("conditions", []) if x["type"] == "Ready"]
            return obj if cond and cond[0]["status"] == "True" else None
        ready = wait_for("the workspace Ready", ws_ready, timeout=600, interval=2)
        took = time.monotonic() - t0
        pod = c.get("pod", "-n", ns, "ws-0")
        assert pod["spec"]["nodeName"] == REAL_NODE_NAME and _ready(pod)
        assert pod["spec"]["containers"][0]["image"] == c.images[NOTEBOOK]
        print(f"apply -k -> workspace Ready: {took:.0f}s (apply {applied - t0:.0f}s); status {ready['status'].get('phase')}")

        # The doctor on the installed SPE: policies enforced, the encrypted class, the webhook
        # through its Service, the trail written (the start-up checkpoint); no IdP in this cluster.
        doctor = subprocess.run([sys.executable, "-m", "spe_operator.cli", "doctor", "--settings",
                                 str(site / "settings.env"), "--kubeconfig", c.kubeconfig,
                                 "--probe-image", c.images[OPERATOR]], capture_output=True, text=True, timeout=600)
        print(doctor.stdout, doctor.stderr)
        rows = {ln.split()[0]: ln.split()[1] for ln in doctor.stdout.splitlines()[2:] if ln[:1].isalpha()
                and len(ln.split()) > 1 and ln.split()[1] in ("OK", "WARN", "FAIL", "UNSAFE", "SKIPPED")}
        assert rows == {"installation": "OK", "network-policy": "OK", "storage-class": "OK",
                        "identity-provider": "FAIL", "gpu-labels": "SKIPPED", "admission-webhook": "OK",
                        "audit-sink": "OK"}, doctor.stdout
        assert doctor.returncode == 1

        # Failover: the leader's pod goes; the follower takes the Lease and serves the webhook.
        t1 = time.monotonic()
        c.kubectl("delete", "pod", "-n", "spe-system", lead, "--wait=false")
        wait_for("a new leader", lambda: (lambda h: h and not h.startswith(lead + "_"))(leader(c)), timeout=120,
                 interval=0.5)
        new_leader = leader(c).split("_")[0]
        wait_for("the new leader Ready", lambda: any(
            _ready(p) and p["metadata"]["name"] == new_leader for p in operator_pods(c)), timeout=120, interval=0.5)
        wait_for("the webhook to answer again", lambda: webhook_answers(c), timeout=120, interval=0.5)
        print(f"failover: new leader {new_leader} Ready and the webhook answering "
              f"{time.monotonic() - t1:.1f}s after the leader's pod was deleted")
        # It reconciles: the workspace stops when asked.
        c.kubectl("patch", "workspace", "-n", ns, "ws", "--type=merge", "-p", '{"spec": {"running": false}}')
        wait_for("the workspace's pod gone", lambda: c.kubectl("get", "pod", "-n", ns, "ws-0",
                                                               check=False).returncode != 0, timeout=180)
    except (AssertionError, pytest.fail.Exception):
        print(diagnose(c))
        raise

    # Uninstall: the SPE objects first (the operator releases what they hold), then the install.
    c.kubectl("delete", "workspace", "-n", ns, "ws", "--timeout=180s")
    c.kubectl("delete", "datapermit", "install-demo", "--timeout=180s")
    c.kubectl("delete", "tools,datasets", "--all", "--timeout=120s")
    c.kubectl("delete", "--ignore-not-found", "-k", str(site), "--timeout=300s", timeout=360)
    hooks = c.get("validatingwebhookconfigurations")["items"] + c.get("mutatingwebhookconfigurations")["items"]
    assert [h["metadata"]["name"] for h in hooks] == [], "the uninstall left a webhook configuration behind"
    assert not [crd for crd in c.get("crd")["items"] if crd["spec"]["group"] == "spe.ehds.io"]
    # Nothing blocks the API server: a namespace and a ConfigMap go in and out.
    c.kubectl("create", "namespace", "after-uninstall")
    c.kubectl("create", "configmap", "-n", "after-uninstall", "x", "--from-literal=a=b")
    c.kubectl("delete", "namespace", "after-uninstall", "--wait=false")
