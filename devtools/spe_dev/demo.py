"""``make demo``: the whole SPE on the embedded stack, installed the way a hospital installs it,
then left up for a researcher and two reviewers to use in a browser until Ctrl-C.

    .venv/bin/python -m spe_dev.demo        (make demo builds what it needs first)

1. ``spe-dev up --fresh``: the local control plane and its real node; the kwok nodes are removed
   and the real node opened to every pod (a one-node cluster).
2. The site's encrypted storage class: rancher/local-path-provisioner on a directory the kernel
   encrypts (fscrypt on a loop ext4), the default class.
3. Keycloak with the SPE realm (a host process; its image would outweigh all the others), a
   relay on spe-dev's end of the node link so that pods reach it, and a stand-in for cluster DNS
   there (the embedded cluster has none; only the hub, proxy and gateway pods ask it).
4. ``spe-operator site`` + ``kubectl apply -k``: the node overlay with this site's settings.env
   (storage class, IdP, ingest image), its generated Secrets and the lines an embedded cluster
   needs (API server port, the relay and DNS addresses in the policies, the pods' resolver).
5. A Dataset ingested from DICOM made of pydicom's test files (the ingest Job on the node), the
   DataPermit naming the researcher and two reviewers, and her Workspace (she starts it in the
   hub, which gives the server its credentials).
6. ``kubectl port-forward`` to the hub's proxy and the gateway, then the URLs and the demo users.

Everything it started is stopped on Ctrl-C (SIGINT or SIGTERM), ``spe-dev down`` included.
Environment: SPE_DEV_HOME / SPE_DEV_PORT_OFFSET as for spe-dev (the browser ports are 8000 and
8090 shifted by the offset); SPE_DEMO_ONCE=1 stops once everything is up (after printing).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import keycloak as kc_server
from . import localpath
from .api import HttpError
from .cluster import admin_api, effective_settings
from .fscrypt import encrypted_directory
from .nodeconf import NODE_TAINT, NodeLayout
from .servers import repo_root, stop
from .servicedns import ServiceDns
from .settings import REAL_NODE_NAME, Settings
from .sourcedata import SourceSpec, public_key_pem, signing_key_pem, write_source

ROOT = repo_root()
API = "spe.ehds.io/v1alpha1"
NS = "spe-system"
STORAGE_CLASS = "spe-demo-encrypted"
DATASET, PERMIT, WORKSPACE = "demo-ct", "demo-study", "analysis"
RESEARCHER, REVIEWERS = "rita", ("rev-ada", "rev-bob")
SOURCE = SourceSpec(patients=6, per_patient=2, classes=2, modality="CT")
IMAGES = ("operator", "egress", "hub", "ingest", "notebook-jupyterlab")
STEPS = 6


class DemoError(RuntimeError):
    """A step failed; the message says which and where to look."""


def log(msg: str) -> None:
    print(msg, flush=True)


def wait(what: str, probe: Callable[[], Any], timeout: float, interval: float = 2.0,
         progress: Callable[[], str] | None = None) -> Any:
    """Poll ``probe`` until it returns something truthy; print ``progress()`` when it changes."""
    deadline, shown = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (HttpError, httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        if progress is not None:
            line = progress()
            if line and line != shown:
                log(f"      {line}")
                shown = line
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def site_patches(apiserver_port: int, relay_port: int, dns_ip: str, volumes_root: Path) -> list[dict]:
    """The embedded cluster's lines beyond settings.env (pure): its API server and the Keycloak
    relay listen on ports of their own, its DNS is a host process on the node link, and its
    storage is local-path's (the datasets' volumes are hostPath volumes below ``volumes_root``,
    which the guardrails must name)."""
    ports = [{"op": "add", "path": "/spec/egress/0/ports/-", "value": {"protocol": "TCP", "port": p}}
             for p in (apiserver_port, relay_port)]
    dns_rule = {"to": [{"ipBlock": {"cidr": f"{dns_ip}/32"}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    patches = [
        {"target": {"kind": "NetworkPolicy", "name": "spe-system-allow-api-server"}, "patch": yaml.safe_dump(ports)},
        {"target": {"kind": "NetworkPolicy", "name": "spe-system-allow-dns"},
         "patch": yaml.safe_dump([{"op": "add", "path": "/spec/egress/-", "value": dns_rule}])},
    ]
    patches.append({"target": {"kind": "ConfigMap", "name": "spe-operator-guardrails"}, "patch": yaml.safe_dump([
        {"op": "replace", "path": "/data/hostPathPrefixes", "value": f"{str(volumes_root).rstrip('/')}/"}])})
    resolver = {"dnsPolicy": "None", "dnsConfig": {"nameservers": [dns_ip], "searches": [f"{NS}.svc", "svc"],
                                                   "options": [{"name": "ndots", "value": "2"}]}}
    for name in ("spe-hub", "spe-proxy", "spe-egress"):
        patches.append({"target": {"kind": "Deployment", "name": name}, "patch": yaml.safe_dump([
            {"op": "add", "path": f"/spec/template/spec/{key}", "value": value} for key, value in resolver.items()])})
    return patches


def demo_kustomization(doc: dict, *, hub_url: str, gateway_url: str, pod_issuer: str, patches: list[dict]) -> dict:
    """The site's kustomization (from ``spe-operator site``) with the demo's lines (pure): the
    dataset signing public key (file dataset-signing.pub beside it), the hub's and gateway's
    public URLs and the issuer as pods reach it, and ``patches``."""
    doc = {**doc, "configMapGenerator": [dict(g) for g in doc["configMapGenerator"]]}
    (gen,) = [g for g in doc["configMapGenerator"] if g["name"] == "spe-operator-config"]
    gen["files"] = ["SPE_DATASET_PUBLIC_KEY=dataset-signing.pub"]
    doc["configMapGenerator"] += [
        {"name": "spe-hub-config", "namespace": NS, "behavior": "merge", "literals": [
            f"SPE_HUB_PUBLIC_URL={hub_url}", f"SPE_HUB_OIDC_INTERNAL_ISSUER={pod_issuer}"]},
        {"name": "spe-egress-config", "namespace": NS, "behavior": "merge", "literals": [
            f"SPE_EGRESS_PUBLIC_URL={gateway_url}", f"SPE_EGRESS_OIDC_INTERNAL_ISSUER={pod_issuer}"]}]
    doc["patches"] = patches
    return doc


def edit_settings(path: Path, values: dict[str, str]) -> None:
    """Set KEY=value lines of a settings.env (appended when missing), as an installer would."""
    lines, seen = [], set()
    for line in path.read_text().splitlines():
        key = line.split("=", 1)[0]
        if key in values and not line.startswith("#"):
            line, seen = f"{key}={values[key]}", seen | {key}
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    path.write_text("\n".join(lines) + "\n")


class Demo:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.s = effective_settings(Settings.from_env(env))
        # beside spe-dev's home, not in it: `spe-dev down` unmounts what is below its home
        self.work = self.s.home.with_name(self.s.home.name + ".demo")
        offset = int(env.get("SPE_DEV_PORT_OFFSET") or 0)
        self.hub_url = f"http://127.0.0.1:{8000 + offset}"
        self.gateway_url = f"http://127.0.0.1:{8090 + offset}"
        self.stack = ExitStack()
        self.forwards: dict[str, subprocess.Popen] = {}
        self.t0 = time.monotonic()
        self.step = 0
        self.is_down = False

    # --- plumbing ----------------------------------------------------------------------------

    def say(self, what: str) -> None:
        self.step += 1
        log(f"==> [{self.step}/{STEPS}] {what}  ({time.monotonic() - self.t0:.0f} s)")

    def spe_dev(self, *args: str, timeout: float) -> None:
        proc = subprocess.run([sys.executable, "-m", "spe_dev", *args], env=self.env, timeout=timeout)
        if proc.returncode != 0:
            raise DemoError(f"spe-dev {' '.join(args)} failed ({proc.returncode}); see its output above")

    def down(self) -> None:
        """``spe-dev down``, once: before the volumes' file system is unmounted (see ``storage``)."""
        if not self.is_down:
            self.is_down = True
            self.spe_dev("down", timeout=300)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> str:
        proc = subprocess.run([str(self.s.binary("kubectl")), *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "KUBECONFIG": str(self.s.admin_kubeconfig)})
        if check and proc.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def apply(self, *bodies: dict, manager: str = "spe-demo") -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-f", "-",
                     input="\n---\n".join(json.dumps(b) for b in bodies))

    # --- the steps ---------------------------------------------------------------------------

    def cluster(self) -> None:
        self.say("the local control plane, its real node (spe-dev up --fresh; a first run imports the images) "
                 "and the encrypted storage class")
        self.stack.callback(self.down)
        self.spe_dev("up", "--fresh", timeout=1500)
        self.api = admin_api(self.s, timeout=30)
        images = json.loads(NodeLayout(self.s).images_file.read_text())["images"]
        missing = [n for n in IMAGES if n not in images]
        if missing:
            raise DemoError(f"images {missing} are not on the node: `make images` builds them")
        self.images = images
        fake = [n["metadata"]["name"] for n in self.api.get("/api/v1/nodes")["items"]
                if n["metadata"]["name"] != REAL_NODE_NAME]
        if fake:
            self.kubectl("delete", "node", *fake)
        self.kubectl("taint", "node", REAL_NODE_NAME, f"{NODE_TAINT['key']}-", check=False)
        self.outer_ip = self.s.node_plan.outer_ip

    def storage(self) -> None:
        root, _ = self.stack.enter_context(encrypted_directory(self.work / "local-path"))
        self.volumes_root = root
        self.apply(*localpath.objects(root, self.images["ingest"], STORAGE_CLASS, default_class=True))
        proc = localpath.start(str(self.s.admin_kubeconfig), self.images["ingest"], self.work / "local-path.log")
        self.stack.callback(localpath.stop, proc)
        self.stack.callback(self.down)  # the node's pods go before the provisioner and the file system
        log(f"      storage class {STORAGE_CLASS}: local-path-provisioner on {root} (fscrypt, AES-256-XTS)")

    def identity(self) -> None:
        self.say("Keycloak with the SPE realm, its relay for the pods, the cluster DNS stand-in")
        self.kc = kc_server.start(self.work / "keycloak", hub_redirect=f"{self.hub_url}/hub/oauth_callback",
                                  gateway_redirect=f"{self.gateway_url}/review/callback")
        self.stack.callback(stop, self.kc.process, 30)
        relay_port = 18080 + int(self.env.get("SPE_DEV_PORT_OFFSET") or 0)
        kc = httpx.URL(self.kc.url)
        relay = subprocess.Popen(["socat", f"TCP-LISTEN:{relay_port},bind={self.outer_ip},fork,reuseaddr",
                                  f"TCP:{kc.host}:{kc.port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.stack.callback(stop, relay)
        self.relay_port = relay_port
        self.pod_issuer = f"http://{self.outer_ip}:{relay_port}/realms/{self.kc.realm}"
        wait("the Keycloak relay", lambda: httpx.get(self.pod_issuer, timeout=5, trust_env=False).status_code == 200,
             timeout=30, interval=0.5)
        dns = ServiceDns(self.api, self.outer_ip).start()
        self.stack.callback(dns.stop)

    def install(self) -> None:
        self.say("installing: spe-operator site, then kubectl apply -k (operator, webhook, hub, proxy, gateway)")
        site = self.work / "site"
        proc = subprocess.run([sys.executable, "-m", "spe_operator.cli", "site", str(site),
                               "--overlay", str(ROOT / "manifests" / "overlays" / "node"),
                               *[f"--image={n}={self.images[n]}" for n in ("operator", "egress", "hub")],
                               f"--oidc-client-secret={self.kc.client_secret}",
                               f"--hub-oidc-client-secret={self.kc.hub_client_secret}"],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise DemoError(f"spe-operator site failed:\n{proc.stdout}{proc.stderr}")
        edit_settings(site / "settings.env", {
            "SPE_DEFAULT_STORAGE_CLASS": STORAGE_CLASS, "SPE_ENCRYPTED_STORAGE_CLASSES": STORAGE_CLASS,
            "SPE_IDP_ISSUER_URL": self.kc.issuer, "SPE_INGEST_IMAGE": self.images["ingest"],
            # one node of two cores also runs the SPE's pods: the ingest gets one core
            "SPE_INGEST_CPU": "1", "SPE_INGEST_MEMORY": "1Gi", "SPE_INGEST_WORKERS": "1", "SPE_INGEST_SHARDS": "1"})
        self.signing_pem = signing_key_pem()
        (site / "dataset-signing.pub").write_bytes(public_key_pem(self.signing_pem))
        kfile = site / "kustomization.yaml"
        header = "".join(ln for ln in kfile.read_text().splitlines(keepends=True) if ln.startswith("#"))
        doc = demo_kustomization(yaml.safe_load(kfile.read_text()), hub_url=self.hub_url,
                                 gateway_url=self.gateway_url, pod_issuer=self.pod_issuer,
                                 patches=site_patches(self.s.ports["apiserver"], self.relay_port, self.outer_ip,
                                                      self.volumes_root))
        kfile.write_text(header + yaml.safe_dump(doc, sort_keys=False))
        self.kubectl("apply", "--server-side", "-k", str(site), timeout=300)
        log(f"      the site: {site} (settings.env, secrets/, kustomization.yaml)")

        def pods(name: str) -> list[dict]:
            return [p for p in self.api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/name={name}")
                    ["items"] if not p["metadata"].get("deletionTimestamp")]

        def state() -> str:
            return ", ".join(f"{n} {sum(map(_ready, pods(n)))}/{len(pods(n))} Ready"
                             for n in ("spe-operator", "spe-hub", "spe-proxy", "spe-egress"))
        wait("the operator, hub, proxy and gateway pods Ready",
             lambda: all(any(map(_ready, pods(n))) for n in ("spe-operator", "spe-hub", "spe-proxy", "spe-egress")),
             timeout=900, progress=state)
        log(f"      {state()}")

    def data(self) -> None:
        self.say(f"the Dataset {DATASET}: DICOM from pydicom's test files, ingested by a Job on the node")
        claim = f"src-{DATASET}"
        self.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": NS},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
                             "resources": {"requests": {"storage": "1Gi"}}}})
        host = self._bind_and_locate(claim)
        names = write_source(host / "export", SOURCE)
        for p in [host, *host.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        log(f"      {SOURCE.files} DICOM files of {len(names)} patients written to the source claim {claim}")
        self.apply(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-pseudonym-key", "namespace": NS},
             "data": {"key": base64.b64encode(secrets.token_bytes(48)).decode()}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-signing-key", "namespace": NS},
             "data": {"key": base64.b64encode(self.signing_pem).decode()}})
        self.apply({"apiVersion": API, "kind": "Dataset", "metadata": {"name": DATASET}, "spec": {
            "description": "Demo CT: pydicom's test images, one study per patient", "modalities": ["CT"],
            "source": {"claimName": claim, "path": "/export"},
            "pseudonymisation": {"keySecret": {"name": "demo-pseudonym-key"}, "site": "demo"},
            "kAnonymity": {"threshold": 2}, "storage": {"size": "1Gi", "storageClassName": STORAGE_CLASS},
            "signingKeySecret": {"name": "demo-signing-key"}}}, manager="data-holder")

        def status() -> dict:
            return (self.api.get_or_none(f"/apis/{API}/datasets/{DATASET}") or {}).get("status") or {}

        def progress() -> str:
            st = status()
            pods = self.api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=spe.ehds.io/dataset={DATASET}")["items"]
            states = sorted({self._pod_state(p) for p in pods})
            return (f"phase {st.get('phase') or 'Pending'}, files processed {st.get('filesProcessed') or 0}"
                    + (f"; ingest pods: {', '.join(states)}" if states else ""))

        def ready() -> bool:
            st = status()
            if st.get("phase") in ("Failed", "Quarantined"):
                raise DemoError(f"the Dataset {DATASET} is {st['phase']}: {json.dumps(st.get('conditions'))}")
            return st.get("phase") == "Ready"
        wait(f"the Dataset {DATASET} Ready", ready, timeout=600, progress=progress)
        st = status()
        log(f"      Ready: {json.dumps(st.get('counts'))}, k-anonymity {st.get('kAnonymity')}")

    @staticmethod
    def _pod_state(pod: dict) -> str:
        """A pod's phase, with why it waits (unscheduled, a container's waiting reason)."""
        st = pod.get("status") or {}
        why = [c.get("message", "") for c in st.get("conditions", [])
               if c["type"] == "PodScheduled" and c["status"] == "False"]
        why += [(c.get("state") or {}).get("waiting", {}).get("reason", "")
                for c in st.get("initContainerStatuses", []) + st.get("containerStatuses", [])]
        why = [w for w in why if w]
        return st.get("phase", "Pending") + (f" ({why[0][:120]})" if why else "")

    def _bind_and_locate(self, claim: str) -> Path:
        """A WaitForFirstConsumer claim binds when a pod uses it: one short pod does; returns
        the volume's directory on this machine."""
        binder = localpath.binder_pod(claim, NS, self.images["ingest"])
        self.apply(binder)
        path = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{claim}"
        bound = wait(f"the claim {claim} Bound", lambda: (lambda c: c if (c or {}).get("status", {}).get(
            "phase") == "Bound" else None)(self.api.get_or_none(path)), timeout=300)
        self.api.call("DELETE", f"/api/v1/namespaces/{NS}/pods/{binder['metadata']['name']}")
        pv = self.api.get(f"/api/v1/persistentvolumes/{bound['spec']['volumeName']}")
        host = Path((pv["spec"].get("hostPath") or pv["spec"].get("local"))["path"])
        wait(f"the volume directory {host}", host.is_dir, timeout=60, interval=0.5)
        return host

    def research(self) -> None:
        self.say(f"the DataPermit {PERMIT} ({RESEARCHER}; reviewers {', '.join(REVIEWERS)}) and her Workspace")
        self.apply({"apiVersion": API, "kind": "Tool", "metadata": {"name": "jupyterlab"}, "spec": {
            "displayName": "JupyterLab", "image": self.images["notebook-jupyterlab"], "kind": "jupyter",
            "gpuCapable": False,
            "approval": {"approvedBy": "platform-operator@spe.local", "approvedAt": "2026-01-01T00:00:00Z",
                         "scan": {"scanner": "demo (built here)", "scannedAt": "2026-01-01T00:00:00Z"}}}})
        not_after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 90 * 86400))
        self.apply({"apiVersion": API, "kind": "DataPermit", "metadata": {"name": PERMIT}, "spec": {
            "permitId": "HDAB-DEMO-0001",
            "purpose": "Demonstration of the secure processing environment: counts per site of a CT dataset.",
            "members": [{"subject": RESEARCHER, "role": "researcher", "displayName": "Rita (researcher)"}],
            "datasets": [DATASET], "notAfter": not_after,
            "ceilings": {"cpu": "4", "memory": "8Gi", "storage": "20Gi", "maxWorkspaces": 2, "gpus": []},
            "exportPolicy": {"reviewersRequired": 2, "reviewers": list(REVIEWERS)}}})
        ns = f"spe-{PERMIT}"

        def permit_phase() -> str:
            return ((self.api.get_or_none(f"/apis/{API}/datapermits/{PERMIT}") or {}).get("status") or {}).get("phase")
        wait(f"the DataPermit {PERMIT} Active", lambda: permit_phase() == "Active", timeout=180,
             progress=lambda: f"phase {permit_phase() or 'Pending'}")
        self.apply({"apiVersion": API, "kind": "Workspace", "metadata": {"name": WORKSPACE, "namespace": ns}, "spec": {
            "permit": PERMIT, "displayName": "Counts per site", "members": [RESEARCHER], "tool": "jupyterlab",
            "resources": {"cpu": "1", "memory": "2Gi"}, "storage": {"size": "1Gi"}, "datasets": [DATASET],
            "idleTimeoutMinutes": 240, "running": False}})

        def ws_status() -> dict:
            return (self.api.get_or_none(f"/apis/{API}/namespaces/{ns}/workspaces/{WORKSPACE}") or {}).get("status") or {}

        def ws_progress() -> str:
            st = ws_status()
            waiting = [c for c in st.get("conditions", []) if c.get("status") != "True"]
            return f"phase {st.get('phase') or 'Pending'}" + (
                f" ({waiting[0]['type']}: {waiting[0].get('message', '')[:100]})" if waiting else "")
        # Stopped until rita starts it in the hub (the hub gives the server its credentials)
        wait(f"the Workspace {ns}/{WORKSPACE} ready to start", lambda: ws_status().get("phase") == "Stopped",
             timeout=300, progress=ws_progress)

    def browser_ports(self) -> None:
        self.say(f"kubectl port-forward: the hub at {self.hub_url}, the review pages at {self.gateway_url}")
        for svc, port, url in (("spe-proxy", 8000, self.hub_url), ("spe-egress", 8080, self.gateway_url)):
            self._forward(svc, port, int(url.rsplit(":", 1)[1]))
        self.stack.callback(self._stop_forwards)
        wait("the hub through the port-forward", lambda: httpx.get(f"{self.hub_url}/hub/health", timeout=5,
                                                                    trust_env=False).status_code == 200, timeout=120)

    def _forward(self, svc: str, port: int, local: int) -> None:
        self.forwards[svc] = subprocess.Popen(
            [str(self.s.binary("kubectl")), "--kubeconfig", str(self.s.admin_kubeconfig), "-n", NS,
             "port-forward", f"svc/{svc}", f"{local}:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def _stop_forwards(self) -> None:
        for proc in self.forwards.values():
            stop(proc, 10)

    def keep_forwarding(self, stopping: threading.Event) -> None:
        """A port-forward ends when its pod goes (a restart, a new hub): start it again."""
        targets = {"spe-proxy": (8000, self.hub_url), "spe-egress": (8080, self.gateway_url)}
        while not stopping.wait(2):
            for svc, proc in list(self.forwards.items()):
                if proc.poll() is not None:
                    port, url = targets[svc]
                    self._forward(svc, port, int(url.rsplit(":", 1)[1]))

    def banner(self) -> None:
        users = [(RESEARCHER, f"researcher, member of the DataPermit {PERMIT}"),
                 *[(r, f"output reviewer of {PERMIT}'s exports") for r in REVIEWERS]]
        log("")
        log(f"The SPE is up ({time.monotonic() - self.t0:.0f} s).")
        log(f"  Open:      {self.hub_url}/hub/workspaces  (log in as {RESEARCHER}; start '{WORKSPACE}')")
        log(f"  Reviews:   {self.gateway_url}/review/  (log in as a reviewer)")
        log(f"  Keycloak:  {self.kc.url}/admin/  (admin / {self.kc.admin_password})")
        log(f"  Users (realm {self.kc.realm}), password for each: {self.kc.user_password}")
        for name, role in users:
            log(f"    {name:<9} {role}")
        log(f"  In a notebook: /data/{DATASET} is the dataset (read-only); `spe-export request FILE -j WHY` asks")
        log("  for an export, and two reviewers' approvals release it.")
        log(f"  kubectl:   export KUBECONFIG={self.s.admin_kubeconfig}")
        log("Ctrl-C stops everything.")

    # --- the whole run -----------------------------------------------------------------------

    def run(self, once: bool) -> int:
        stopping = threading.Event()

        def on_signal(signum, frame):  # noqa: ARG001 - signal handler
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, on_signal)
        # Ctrl-C even when started from a shell that ignores SIGINT for its background jobs
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with self.stack:
                self.cluster()
                self.storage()
                self.identity()
                self.install()
                self.data()
                self.research()
                self.browser_ports()
                self.banner()
                if once:
                    return 0
                keeper = threading.Thread(target=self.keep_forwarding, args=(stopping,), daemon=True)
                keeper.start()
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            log("\n==> stopping: the port-forwards, the DNS stand-in, Keycloak, spe-dev down, the provisioner, the encrypted file system")
            return 0
        except DemoError as e:
            log(f"\nmake demo: {e}\n(stopping what was started; spe-dev's logs are under {self.s.home})")
            return 1
        finally:
            stopping.set()
            log("==> stopped")


def main() -> int:
    if os.geteuid() != 0:
        print("make demo: the real node needs root (network namespace, containerd, mounts)", file=sys.stderr)
        return 2
    return Demo(dict(os.environ)).run(once=os.environ.get("SPE_DEMO_ONCE") == "1")


if __name__ == "__main__":
    sys.exit(main())
