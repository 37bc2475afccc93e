"""The hub and its proxy as pods on spe-dev's real node, from the image built here (images/hub),
with manifests/base/hub.yaml as written (image by digest, a local volume instead of the claim,
and the Services' cluster IPs where a cluster DNS would resolve their names: the test cluster
has no DNS). /hub/health answers through `kubectl port-forward`, on the hub and through the proxy."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from spe_dev.api import HttpError
from tests.fixtures.waiting import wait_for
from tests.node.conftest import pod_ready, real_node  # noqa: F401 - real_node is a fixture

pytestmark = [pytest.mark.hub, pytest.mark.node, pytest.mark.timeout(900)]  # the first test waits for the cluster

BASE = Path(__file__).resolve().parents[2] / "manifests" / "base"
NS = "spe-system"


def hub_config_literals() -> dict[str, str]:
    kust = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (gen,) = [g for g in kust["configMapGenerator"] if g["name"] == "spe-hub-config"]
    return dict(lit.split("=", 1) for lit in gen["literals"])


def port_forward(cluster, target: str, port: int):
    proc = subprocess.Popen([str(cluster.bin_dir / "kubectl"), "--kubeconfig", cluster.kubeconfig,
                             "-n", NS, "port-forward", target, f"0:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    assert m, f"port-forward to {target}: {line}"
    return proc, int(m[1])


@pytest.fixture
def hub_on_node(cluster, real_node, operator_kubeconfig):  # noqa: F811
    """manifests/base/hub.yaml applied in spe-system, pods pinned to the real node."""
    api = cluster.api()
    image = real_node.image("hub")
    docs = [d for d in yaml.safe_load_all((BASE / "hub.yaml").read_text()) if d]
    created: list[str] = []

    def create(path: str, body: dict) -> dict:
        try:
            api.call("DELETE", f"{path}/{body['metadata']['name']}")
            time.sleep(1)
        except HttpError as err:
            if err.status != 404:
                raise
        out = api.create(path, body)
        created.append(f"{path}/{body['metadata']['name']}")
        return out

    def meta(name):
        return {"name": name, "namespace": NS, "labels": {"spe.ehds.io/test": "true"}}

    create(f"/api/v1/namespaces/{NS}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": meta("spe-hub-oidc"),
                                               "stringData": {"client-secret": secrets.token_urlsafe(16)}})
    create(f"/api/v1/namespaces/{NS}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": meta("spe-hub-keys"),
                                               "stringData": {"crypt-key": secrets.token_hex(32),
                                                              "proxy-token": secrets.token_hex(32)}})
    ips = {}
    for doc in docs:
        if doc["kind"] == "Service":
            out = create(f"/api/v1/namespaces/{NS}/services", doc)
            ips[doc["metadata"]["name"]] = out["spec"]["clusterIP"]
        elif doc["kind"] == "ServiceAccount":
            if api.get_or_none(f"/api/v1/namespaces/{NS}/serviceaccounts/{doc['metadata']['name']}") is None:
                create(f"/api/v1/namespaces/{NS}/serviceaccounts", doc)
    config = hub_config_literals() | {
        "SPE_HUB_HUB_CONNECT_URL": f"http://{ips['spe-hub']}:8081",
        "SPE_HUB_PROXY_API_URL": f"http://{ips['spe-proxy-api']}:8001"}
    create(f"/api/v1/namespaces/{NS}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": meta("spe-hub-config"), "data": config})
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        pod.update(real_node.pin(pod))
        (c,) = pod["containers"]
        c["image"], c["imagePullPolicy"] = image, "Never"
        for vol in pod.get("volumes", []):
            if "persistentVolumeClaim" in vol:
                vol.pop("persistentVolumeClaim")
                vol["emptyDir"] = {"sizeLimit": "256Mi"}
        c["args"] = [a.replace("spe-hub.spe-system.svc", ips["spe-hub"]) for a in c.get("args", [])]
        create(f"/apis/apps/v1/namespaces/{NS}/deployments", doc)
    yield api
    for path in reversed(created):
        try:
            api.call("DELETE", path)
        except HttpError as err:
            if err.status != 404:
                raise


def _ready_pod(api, name: str) -> dict | None:
    pods = api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/name={name}").get("items", [])
    return next((p for p in pods if pod_ready(p)), None)


def test_hub_and_proxy_run_on_the_real_node_and_answer_health(cluster, hub_on_node):
    api = hub_on_node
    started = time.monotonic()
    try:
        hub = wait_for("the hub pod Ready", lambda: _ready_pod(api, "spe-hub"), timeout=240)
        proxy = wait_for("the proxy pod Ready", lambda: _ready_pod(api, "spe-proxy"), timeout=120)
    except (AssertionError, pytest.fail.Exception):
        for name in ("spe-hub", "spe-proxy"):
            print(cluster.kubectl("-n", NS, "logs", f"deploy/{name}", "--tail=60").stdout)
            print(cluster.kubectl("-n", NS, "describe", "pods", "-l", f"app.kubernetes.io/name={name}").stdout[-3000:])
        raise
    print(f"hub and proxy Ready on the real node in {time.monotonic() - started:.1f}s")
    assert hub["spec"]["nodeName"] == proxy["spec"]["nodeName"] == "spe-node-1"
    for pod in (hub, proxy):
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "spe"
    assert hub["metadata"]["labels"]["app.kubernetes.io/component"] == "hub"
    assert proxy["metadata"]["labels"]["app.kubernetes.io/component"] == "proxy"
    assert hub["spec"]["serviceAccountName"] == "spe-hub"

    for target, port in ((f"pod/{hub['metadata']['name']}", 8081), (f"pod/{proxy['metadata']['name']}", 8000)):
        proc, local = port_forward(cluster, target, port)
        try:
            def health():
                try:
                    r = httpx.get(f"http://127.0.0.1:{local}/hub/health", timeout=5, trust_env=False)
                    return r if r.status_code == 200 else None
                except httpx.HTTPError:
                    return None
            # through the proxy, /hub/ is routed once the hub has registered itself there
            r = wait_for(f"/hub/health via {target}", health, timeout=60, interval=1)
            assert r.status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)
