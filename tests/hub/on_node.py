"""The hub, its proxy and the egress gateway as pods on spe-dev's real node, from the images built
here, with manifests/base as written except what a test cluster lacks: images by digest, local
volumes instead of claims, and the Services' cluster IPs where a cluster DNS would resolve their
names (the test cluster has none)."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from pathlib import Path

import yaml

from spe_dev.api import HttpError
from tests.fixtures.waiting import wait_for
from tests.node.conftest import pod_ready

BASE = Path(__file__).resolve().parents[2] / "manifests" / "base"
NS = "spe-system"
TEST_LABEL = {"spe.ehds.io/test": "true"}


def config_literals(name: str) -> dict[str, str]:
    """The literals of one of manifests/base's ConfigMap generators."""
    kust = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (gen,) = [g for g in kust["configMapGenerator"] if g["name"] == name]
    return dict(lit.split("=", 1) for lit in gen["literals"])


def port_forward(cluster, target: str, port: int, local: int = 0):
    """``kubectl port-forward`` in spe-system; returns (process, local port)."""
    proc = subprocess.Popen([str(cluster.bin_dir / "kubectl"), "--kubeconfig", cluster.kubeconfig,
                             "-n", NS, "port-forward", target, f"{local}:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    assert m, f"port-forward to {target}: {line}"
    return proc, int(m[1])


def ready_pod(api, name: str) -> dict | None:
    pods = api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/name={name}").get("items", [])
    return next((p for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")), None)


class SystemPods:
    """What a test creates in spe-system (replacing leftovers of an earlier run), deleted in
    reverse order by ``cleanup``."""

    def __init__(self, cluster, real_node):
        self.cluster, self.real_node, self.api = cluster, real_node, cluster.api()
        self.created: list[str] = []
        self.ips: dict[str, str] = {}   # Service name -> cluster IP

    def create(self, path: str, body: dict) -> dict:
        try:
            self.api.call("DELETE", f"{path}/{body['metadata']['name']}")
            time.sleep(1)
        except HttpError as err:
            if err.status != 404:
                raise
        out = self.api.create(path, body)
        self.created.append(f"{path}/{body['metadata']['name']}")
        return out

    def secret(self, name: str, data: dict[str, str]) -> None:
        self.create(f"/api/v1/namespaces/{NS}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS, "labels": TEST_LABEL},
            "stringData": data})

    def config_map(self, name: str, data: dict[str, str]) -> None:
        self.create(f"/api/v1/namespaces/{NS}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS, "labels": TEST_LABEL},
            "data": data})

    def apply_file(self, filename: str, image: str, *, services_only: bool = False,
                   args: dict[str, str] | None = None, pod: dict | None = None) -> None:
        """manifests/base/<filename>: its Services (cluster IPs kept in ``ips``), ServiceAccounts
        (when missing) and, unless ``services_only``, its Deployments pinned to the real node with
        ``image`` and emptyDir volumes for claims; ``args`` rewrites words of the containers' args,
        ``pod`` adds to their pod specs."""
        docs = [d for d in yaml.safe_load_all((BASE / filename).read_text()) if d]
        for doc in docs:
            if doc["kind"] == "Service" and doc["metadata"]["name"] not in self.ips:  # made once: their IPs are configured
                out = self.create(f"/api/v1/namespaces/{NS}/services", doc)
                self.ips[doc["metadata"]["name"]] = out["spec"]["clusterIP"]
            elif doc["kind"] == "ServiceAccount" and self.api.get_or_none(
                    f"/api/v1/namespaces/{NS}/serviceaccounts/{doc['metadata']['name']}") is None:
                self.create(f"/api/v1/namespaces/{NS}/serviceaccounts", doc)
        if services_only:
            return
        for doc in docs:
            if doc["kind"] != "Deployment":
                continue
            spec = doc["spec"]["template"]["spec"]
            spec.update(self.real_node.pin(spec) | (pod or {}))
            (c,) = spec["containers"]
            c["image"], c["imagePullPolicy"] = image, "Never"
            for vol in spec.get("volumes", []):
                if "persistentVolumeClaim" in vol:
                    vol.pop("persistentVolumeClaim")
                    vol["emptyDir"] = {"sizeLimit": "256Mi"}
            for old, new in (args or {}).items():
                c["args"] = [a.replace(old, new) for a in c.get("args", [])]
            self.create(f"/apis/apps/v1/namespaces/{NS}/deployments", doc)

    def hub(self, *, config: dict[str, str] | None = None, oidc_client_secret: str | None = None,
            dns: str | None = None) -> None:
        """manifests/base/hub.yaml: the hub and its proxy, configured from spe-hub-config plus
        ``config``; with ``dns``, that nameserver (devtools/spe_dev/servicedns.py) resolves the
        workspaces' Service names for them, as a cluster DNS would."""
        self.secret("spe-hub-oidc", {"client-secret": oidc_client_secret or secrets.token_urlsafe(16)})
        self.secret("spe-hub-keys", {"crypt-key": secrets.token_hex(32), "proxy-token": secrets.token_hex(32)})
        self.apply_file("hub.yaml", "", services_only=True)
        self.config_map("spe-hub-config", config_literals("spe-hub-config") | {
            "SPE_HUB_HUB_CONNECT_URL": f"http://{self.ips['spe-hub']}:8081",
            "SPE_HUB_PROXY_API_URL": f"http://{self.ips['spe-proxy-api']}:8001"} | (config or {}))
        resolver = {"dnsPolicy": "None", "dnsConfig": {"nameservers": [dns], "searches": [f"{NS}.svc", "svc"]}}
        self.apply_file("hub.yaml", self.real_node.image("hub"), args={"spe-hub.spe-system.svc": self.ips["spe-hub"]},
                        pod=resolver if dns else None)

    def gateway(self, *, config: dict[str, str], oidc_client_secret: str) -> None:
        """manifests/base/egress.yaml: the egress gateway, configured from spe-egress-config plus
        ``config``, reaching the hub API by the hub Service's IP (call ``hub`` first)."""
        self.secret("spe-egress-key", {"key": secrets.token_hex(32)})
        self.secret("spe-egress-oidc", {"client-secret": oidc_client_secret})
        self.config_map("spe-egress-config", config_literals("spe-egress-config") | {
            "SPE_EGRESS_HUB_API_URL": f"http://{self.ips['spe-hub']}:8081/hub/api"} | config)
        self.apply_file("egress.yaml", self.real_node.image("egress"))

    def wait_ready(self, *names: str, timeout: float = 240) -> dict[str, dict]:
        pods = {}
        try:
            for name in names:
                pods[name] = wait_for(f"the {name} pod Ready", lambda n=name: ready_pod(self.api, n), timeout=timeout)
        except BaseException:  # pytest's fail is one: show why before it propagates
            print(self.diagnose(*names))
            raise
        return pods

    def diagnose(self, *names: str) -> str:
        out = []
        for name in names:
            out.append(self.cluster.kubectl("-n", NS, "logs", f"deploy/{name}", "--tail=80").stdout)
            previous = self.cluster.kubectl("-n", NS, "logs", f"deploy/{name}", "--previous", "--tail=40")
            if previous.returncode == 0:
                out.append(f"--- {name}, the container before the last restart:\n{previous.stdout}")
            pods = self.api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/name={name}")
            for pod in pods.get("items", []):
                for status in pod.get("status", {}).get("containerStatuses", []):
                    out.append(f"--- {pod['metadata']['name']}/{status['name']}: restarts {status.get('restartCount')}, "
                               f"last state {status.get('lastState')}")
            out.append(self.cluster.kubectl("-n", NS, "describe", "pods", "-l",
                                            f"app.kubernetes.io/name={name}").stdout[-3000:])
        return "\n".join(out)

    def cleanup(self) -> None:
        for path in reversed(self.created):
            try:
                self.api.call("DELETE", path)
            except HttpError as err:
                if err.status != 404:
                    raise
