"""Are NetworkPolicies enforced? Two probe pods and a forbidden connection.

In a fresh namespace the doctor starts a server pod (a TCP listener) and a client pod that
connects to it: the control, which proves the two can talk at all. Then it applies a
NetworkPolicy that denies every ingress to the server and starts a second client: its
connection must fail. A cluster whose CNI ignores NetworkPolicy lets it through (UNSAFE); a
cluster whose policy engine is down, so that even the control cannot connect, cannot be shown
to enforce anything (UNSAFE as well: the permits' policies would not be programmed either).
The namespace and everything in it are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from spe_kube import ApiError, KubeClient, kind_for

from .report import CheckResult, Status

NAME = "network-policy"
PORT = 8080
LABEL = "spe.ehds.io/doctor"
NAMESPACE = kind_for("v1", "Namespace")
POD = kind_for("v1", "Pod")
POLICY = kind_for("networking.k8s.io/v1", "NetworkPolicy")

SERVER = ("import socket\n"
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          f"s.bind(('0.0.0.0', {PORT})); s.listen(16)\n"
          "while True:\n    c, _ = s.accept(); c.close()\n")
# argv: host port settle attempts. Prints one word per attempt: open | refused | timeout | <errno>.
CLIENT = ("import errno, socket, sys, time\n"
          "host, port, settle, attempts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])\n"
          "time.sleep(settle)\n"
          "for _ in range(attempts):\n"
          "    try:\n"
          "        socket.create_connection((host, port), timeout=2).close(); print('open', flush=True)\n"
          "    except socket.timeout:\n"
          "        print('timeout', flush=True)\n"
          "    except OSError as e:\n"
          "        print({errno.ECONNREFUSED: 'refused'}.get(e.errno, errno.errorcode.get(e.errno, 'error')), flush=True)\n"
          "    time.sleep(1)\n")


def probe_namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {LABEL: "probe", "app.kubernetes.io/part-of": "spe",
                                                  "pod-security.kubernetes.io/enforce": "restricted"}}}


def probe_pod(namespace: str, name: str, image: str, argv: list[str], *, role: str,
              node: str | None = None, ready_port: int | None = None) -> dict[str, Any]:
    """A restricted pod running ``python3 -c``; ``node`` pins it (nodeName, every taint tolerated)."""
    container: dict[str, Any] = {
        "name": "probe", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["python3", "-c", *argv],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if ready_port:
        container["ports"] = [{"containerPort": ready_port, "protocol": "TCP"}]
        container["readinessProbe"] = {"tcpSocket": {"port": ready_port}, "periodSeconds": 1}
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never",
                            "automountServiceAccountToken": False, "enableServiceLinks": False,
                            "terminationGracePeriodSeconds": 0}
    if node:
        spec["nodeName"] = node
        spec["tolerations"] = [{"operator": "Exists"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: role}}, "spec": spec}


def deny_ingress_policy(namespace: str) -> dict[str, Any]:
    """Nothing may connect to the server pod."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "doctor-deny-server", "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": {LABEL: "server"}}, "policyTypes": ["Ingress"]}}


def judge(control: list[str], forbidden: list[str]) -> CheckResult:
    """The verdict from the two clients' attempts (pure)."""
    if "open" not in control:
        return CheckResult(
            NAME, Status.UNSAFE,
            f"two probe pods without any policy could not connect ({', '.join(control) or 'no output'}): "
            "the network or its policy engine is not working, so the permits' NetworkPolicies cannot be "
            "shown to be enforced",
            "check that the CNI and its NetworkPolicy controller (e.g. kube-router, Calico, Cilium) run on "
            "every node, then run the doctor again")
    if forbidden and forbidden[-1] == "open":
        return CheckResult(
            NAME, Status.UNSAFE,
            f"a connection that a NetworkPolicy forbids succeeded ({', '.join(forbidden)}): this cluster's "
            "network does not enforce NetworkPolicy, so workspaces would not be isolated",
            "install a CNI that enforces NetworkPolicy (kube-router, Calico, Cilium) or start its policy "
            "controller; do not run workspaces here until this check passes")
    if not forbidden:
        return CheckResult(NAME, Status.FAIL, "the forbidden-connection probe printed nothing",
                           "look at the probe pod's events and run the doctor again")
    return CheckResult(NAME, Status.OK,
                       f"enforced: allowed connection open, forbidden connection blocked ({forbidden[-1]})")


async def _wait_pod(kube: KubeClient, namespace: str, name: str, done, timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pod: dict | None = None
    while loop.time() < deadline:
        pod = await kube.get_or_none(POD, name, namespace)
        if pod and done(pod):
            return pod
        await asyncio.sleep(0.5)
    status = (pod or {}).get("status", {})
    raise TimeoutError(f"probe pod {namespace}/{name} not ready after {timeout:.0f}s "
                       f"(phase {status.get('phase')}, {status.get('containerStatuses') or status.get('conditions')})")


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _finished(pod: dict) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


async def _client(kube: KubeClient, namespace: str, name: str, image: str, host: str, *, node: str | None,
                  settle: float, attempts: int, timeout: float) -> list[str]:
    await kube.create(probe_pod(namespace, name, image, [CLIENT, host, str(PORT), str(settle), str(attempts)],
                                role="client", node=node))
    await _wait_pod(kube, namespace, name, _finished, timeout)
    out = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log")
    return str(out or "").split()


async def check_network_policy(kube: KubeClient, image: str | None, *, node: str | None = None,
                               timeout: float = 180.0, settle: float = 3.0, attempts: int = 4) -> CheckResult:
    if not image:
        return CheckResult(NAME, Status.FAIL, "not run: no probe image given, so enforcement is unproven",
                           "run `spe-operator doctor --probe-image <an image with python3, e.g. the operator's>`")
    namespace = f"spe-doctor-probe-{secrets.token_hex(3)}"
    await kube.create(probe_namespace(namespace))
    try:
        await kube.wait_for(lambda: kube.get_or_none(kind_for("v1", "ServiceAccount"), "default", namespace),
                            timeout=60, what=f"the default ServiceAccount of {namespace}")
        await kube.create(probe_pod(namespace, "server", image, [SERVER], role="server", node=node,
                                    ready_port=PORT))
        server = await _wait_pod(kube, namespace, "server", _ready, timeout)
        host = server["status"]["podIP"]
        control = await _client(kube, namespace, "control", image, host, node=node, settle=0, attempts=3,
                                timeout=timeout)
        await kube.create(deny_ingress_policy(namespace))
        forbidden = await _client(kube, namespace, "forbidden", image, host, node=node, settle=settle,
                                  attempts=attempts, timeout=timeout)
        return judge(control, forbidden)
    except (TimeoutError, ApiError) as exc:
        return CheckResult(NAME, Status.FAIL, f"the probe could not run: {exc}",
                           "look at the probe namespace's events (kubectl get events -n spe-doctor-probe-…)")
    finally:
        await kube.delete(NAMESPACE, namespace)
