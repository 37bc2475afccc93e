"""Fixtures of the tests on spe-dev's real node (spe-node-1: containerd, kubelet, kube-proxy,
kube-router in a network namespace of its own).

Pods reach the real node in two ways: the test's own pods name it (nodeSelector + the node's
taint tolerated); pods the operator makes (workspaces) stay exactly as the operator builds them,
and their namespace carries the PodNodeSelector / PodTolerationRestriction annotations that pin
its pods there, as a cluster administrator would.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from spe_dev.api import HttpError
from spe_dev.netns import run_in
from spe_dev.nodeconf import NODE_TAINT, NodeLayout
from spe_dev.settings import REAL_NODE_NAME
from tests.fixtures.waiting import wait_for

NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector"
TOLERATIONS_ANNOTATION = "scheduler.alpha.kubernetes.io/defaultTolerations"
TOLERATION = {"key": NODE_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
NOTEBOOK = "notebook-jupyterlab"


@dataclass
class RealNode:
    """The real node as the tests see it."""

    cluster: Any
    layout: NodeLayout
    images: dict[str, str] = field(default_factory=dict)  # name -> localhost/spe-<name>@sha256:...

    def image(self, name: str) -> str:
        """``localhost/spe-<name>@sha256:...``: the built image, by digest."""
        if name in self.images:
            return self.images[name]
        pytest.fail(f"image {name} is not in the real node's containerd ({sorted(self.images)}); "
                    "build it with `bash images/build-local.sh` (make test does) and run `spe-dev up`",
                    pytrace=False)

    def in_node_netns(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return run_in(self.layout.netns, list(argv), timeout=timeout)

    def pin(self, spec: dict) -> dict:
        """A pod spec of the test's own, placed on the real node."""
        spec = dict(spec)
        spec["nodeSelector"] = {**spec.get("nodeSelector", {}), "kubernetes.io/hostname": REAL_NODE_NAME}
        spec["tolerations"] = [*spec.get("tolerations", []), TOLERATION]
        return spec

    def pin_namespace(self, namespace: str) -> None:
        """Every pod created in ``namespace`` from now on lands on the real node."""
        self.cluster.api().call("PATCH", f"/api/v1/namespaces/{namespace}", {"metadata": {"annotations": {
            NODE_SELECTOR_ANNOTATION: f"kubernetes.io/hostname={REAL_NODE_NAME}",
            TOLERATIONS_ANNOTATION: json.dumps([TOLERATION]),
        }}}, content_type="application/merge-patch+json")


@pytest.fixture(scope="session")
def real_node(cluster) -> RealNode:
    s = cluster.settings
    if not s.real_node:
        pytest.fail("the test cluster runs without its real node (SPE_DEV_REAL_NODE=0); the node tests need it",
                    pytrace=False)
    node = cluster.api().get_or_none(f"/api/v1/nodes/{REAL_NODE_NAME}")
    ready = node and any(c["type"] == "Ready" and c["status"] == "True"
                         for c in node.get("status", {}).get("conditions", []))
    assert ready, f"node {REAL_NODE_NAME} is not Ready: {node and node.get('status', {}).get('conditions')}"
    lay = NodeLayout(s)
    images = json.loads(lay.images_file.read_text())["images"]
    return RealNode(cluster, lay, images)


def pod_ready(pod: dict | None) -> bool:
    return bool(pod) and any(c["type"] == "Ready" and c["status"] == "True"
                             for c in pod.get("status", {}).get("conditions", []))


def run_pod(cluster, real_node: RealNode, namespace: str, name: str, *, image: str, command: list[str],
            labels: dict[str, str] | None = None, port: int | None = None, timeout: float = 120,
            extra: dict | None = None) -> dict:
    """Create a pod of the test's own on the real node (non-root, read-only root) and wait
    until it is Ready (a TCP probe on ``port`` when given); returns the pod."""
    container: dict[str, Any] = {
        "name": "main", "image": image, "imagePullPolicy": "Never", "command": command,
        # Requests = limits: the permits' namespaces have quotas that require both.
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "50m", "memory": "128Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if port:
        container["ports"] = [{"containerPort": port, "protocol": "TCP"}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    spec = real_node.pin({"containers": [container], "automountServiceAccountToken": False,
                          "enableServiceLinks": False, "terminationGracePeriodSeconds": 1, **(extra or {})})
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}
    api = cluster.api()
    api.create(f"/api/v1/namespaces/{namespace}/pods", body)
    return wait_for(f"pod {namespace}/{name} Ready",
                    lambda: (lambda p: p if pod_ready(p) else None)(
                        api.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{name}")), timeout=timeout)


def exec_in(cluster, namespace: str, pod: str, *argv: str, container: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    args = ["exec", "-n", namespace, pod]
    if container:
        args += ["-c", container]
    return cluster.kubectl(*args, "--", *argv, timeout=timeout)


# Run inside a pod: try a TCP connection (or a DNS query over UDP) with a short timeout and
# print one word: open | refused | timeout | unreachable | <errno name>.
PROBE = r"""
import errno, socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
try:
    if kind == "tcp":
        socket.create_connection((host, port), timeout=timeout).close()
        print("open")
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x01\x00\x01"
        s.sendto(q, (host, port))
        data, _ = s.recvfrom(512)
        print("open" if data[:2] == b"\x12\x34" else "garbled")
except socket.timeout:
    print("timeout")
except OSError as e:
    print({errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "unreachable",
           errno.ENETUNREACH: "unreachable", errno.EPERM: "refused"}.get(e.errno, errno.errorcode.get(e.errno, str(e))))
"""


def probe(cluster, namespace: str, pod: str, kind: str, host: str, port: int, timeout: float = 2.0) -> str:
    proc = exec_in(cluster, namespace, pod, "python3", "-c", PROBE, kind, host, str(port), str(timeout),
                   timeout=timeout + 30)
    assert proc.returncode == 0, f"probe in {namespace}/{pod} failed: {proc.stderr}"
    return proc.stdout.strip()


@pytest.fixture
def node_namespace(cluster, real_node: RealNode) -> Iterator[str]:
    """A fresh namespace whose pods land on the real node; deleted afterwards."""
    name = f"t-node-{secrets.token_hex(3)}"
    api = cluster.api()
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": name, "labels": {"spe.ehds.io/test": "true"}}})
    real_node.pin_namespace(name)
    wait_for("default ServiceAccount", lambda: api.get_or_none(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
             timeout=30)
    yield name
    try:
        api.call("DELETE", f"/api/v1/namespaces/{name}")
    except HttpError as err:
        if err.status != 404:
            raise


def world_writable_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


@pytest.fixture(scope="module")
def node_env(cluster, real_node, spe_crds, storage_provisioner, operator, tmp_path_factory):
    from tests.workspace.helpers import Kube

    from .envs import NodeEnv

    env = NodeEnv(Kube(cluster.api()), real_node, tmp_path_factory)
    yield env
    env.cleanup()
