"""The local control plane is a real Kubernetes: scheduler, controllers, RBAC, fake GPU nodes."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest

from spe_dev.api import HttpError
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.controlplane

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
LAB = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544: spe-dev's non-loopback addresses
L40S = "NVIDIA-L40S"




def gpu_pod(name: str, gpus: int, product: str = L40S) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"nvidia.com/gpu.product": product},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "main",
                "image": "registry.invalid/never-pulled:1",
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }],
        },
    }


def condition(obj: dict, ctype: str) -> dict | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == ctype:
            return cond
    return None


def get_or_none(api, path: str) -> dict | None:
    try:
        return api.get(path)
    except HttpError as err:
        if err.status == 404:
            return None
        raise


def test_server_is_the_kubernetes_built_here(cluster):
    proc = cluster.kubectl("version", "-o", "json", check=True)
    versions = json.loads(proc.stdout)
    server, client = versions["serverVersion"], versions["clientVersion"]
    assert server["major"] == "1" and server["minor"] in ("34", "35"), server
    assert server["gitVersion"].startswith(f"v1.{server['minor']}."), server
    assert client["gitVersion"] == server["gitVersion"], versions


def test_gpu_pod_lands_on_the_l40s_node_and_runs(cluster, namespace):
    api = cluster.api()
    api.create(f"/api/v1/namespaces/{namespace}/pods", gpu_pod("one-gpu", 1))

    def running():
        pod = api.get(f"/api/v1/namespaces/{namespace}/pods/one-gpu")
        ready = condition(pod, "Ready")
        ok = pod["status"].get("phase") == "Running" and ready and ready["status"] == "True"
        return pod if ok else None

    pod = wait_for("the 1-GPU pod to be Running and Ready", running)
    node = api.get(f"/api/v1/nodes/{pod['spec']['nodeName']}")
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == L40S
    assert pod["spec"]["nodeName"] == "spe-gpu-l40s"
    assert ipaddress.ip_address(pod["status"]["podIP"]) in LAB


def test_pod_asking_more_gpus_than_any_l40s_node_has_stays_unschedulable(cluster, namespace):
    api = cluster.api()
    api.create(f"/api/v1/namespaces/{namespace}/pods", gpu_pod("three-gpus", 3))

    def unschedulable():
        pod = api.get(f"/api/v1/namespaces/{namespace}/pods/three-gpus")
        cond = condition(pod, "PodScheduled")
        return (pod, cond) if cond and cond["status"] == "False" else None

    pod, cond = wait_for("the scheduler to give up on the 3-GPU pod", unschedulable)
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")
    assert cond["reason"] == "Unschedulable"
    # The scheduler's own explanation: the L40S node has too few GPUs, the others don't match.
    assert "nodes are available" in cond["message"], cond
    assert "Insufficient nvidia.com/gpu" in cond["message"], cond
    assert "didn't match Pod's node affinity/selector" in cond["message"], cond


def test_garbage_collector_deletes_a_dependent_with_its_owner(cluster, namespace):
    api = cluster.api()
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = api.create(base, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    api.create(base, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
        }]},
    })
    api.call("DELETE", f"{base}/owner", {"propagationPolicy": "Background"})
    wait_for("the garbage collector to delete the dependent",
             lambda: get_or_none(api, f"{base}/dependent") is None)


def test_job_runs_to_completion(cluster, namespace):
    api = cluster.api()
    api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "registry.invalid/never-pulled:1"}],
        }}},
    })

    def complete():
        job = api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/once")
        cond = condition(job, "Complete")
        return job if cond and cond["status"] == "True" else None

    job = wait_for("the Job to complete", complete)
    assert job["status"]["succeeded"] == 1


def test_deleting_a_namespace_completes(cluster):
    api = cluster.api()
    name = f"t-ns-delete-{int(time.time() * 1000) % 10**8}"
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for("the default ServiceAccount",
             lambda: get_or_none(api, f"/api/v1/namespaces/{name}/serviceaccounts/default"))
    api.create(f"/api/v1/namespaces/{name}/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    pod = gpu_pod("p", 0)
    pod["spec"] = {"containers": [{"name": "main", "image": "registry.invalid/never-pulled:1"}]}
    api.create(f"/api/v1/namespaces/{name}/pods", pod)
    wait_for("the pod to run", lambda: api.get(f"/api/v1/namespaces/{name}/pods/p")["status"].get("phase") == "Running")

    api.call("DELETE", f"/api/v1/namespaces/{name}")
    wait_for("the namespace (and its running pod) to be gone",
             lambda: get_or_none(api, f"/api/v1/namespaces/{name}") is None, timeout=90)


def test_service_account_with_a_narrow_role_is_refused_outside_it(cluster, namespace):
    api = cluster.api()
    ns = f"/api/v1/namespaces/{namespace}"
    api.create(f"{ns}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "narrow"}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    api.create(f"{rbac}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "read-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    })
    api.create(f"{rbac}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "narrow"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": namespace}],
    })
    review = api.create(f"{ns}/serviceaccounts/narrow/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600},
    })
    sa = cluster.api(token=review["status"]["token"])

    # Inside the role: allowed (RBAC caches may lag the binding by a moment).
    wait_for("the RoleBinding to take effect", lambda: sa.raw("GET", f"{ns}/configmaps")[0] == 200)
    # Outside it: another resource, another namespace, a cluster-scoped resource, a write.
    for method, path in [
        ("GET", f"{ns}/secrets"),
        ("GET", "/api/v1/namespaces/default/configmaps"),
        ("GET", "/api/v1/nodes"),
        ("DELETE", f"{ns}/configmaps/anything"),
    ]:
        status, body = sa.raw(method, path)
        assert status == 403, (method, path, status, body)
        assert f"system:serviceaccount:{namespace}:narrow" in json.loads(body)["message"]


def test_every_node_and_pod_address_is_loopback_or_lab(cluster, namespace):
    """Node addresses: loopback (kwok) or the real node's IP in 198.18.0.0/15; pod, podCIDR and
    Service addresses in 198.18.0.0/15 (kwok's fake pod IPs, the real node's pods, ClusterIPs)."""
    api = cluster.api()
    # At least one running pod of our own, so the pod check cannot pass vacuously.
    api.create(f"/api/v1/namespaces/{namespace}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "addr"},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/never-pulled:1"}]},
    })
    wait_for("the pod to get an IP",
             lambda: api.get(f"/api/v1/namespaces/{namespace}/pods/addr")["status"].get("podIP"))

    nodes = api.get("/api/v1/nodes")["items"]
    assert len(nodes) >= 4
    for node in nodes:
        name = node["metadata"]["name"]
        addresses = node["status"].get("addresses", [])
        assert any(a["type"] == "InternalIP" for a in addresses), name
        for addr in addresses:
            if addr["type"] == "Hostname":
                assert addr["address"] == name  # a bare node name: resolves nowhere
            else:
                assert ipaddress.ip_address(addr["address"]) in LOOPBACK or \
                    ipaddress.ip_address(addr["address"]) in LAB, (name, addr)
        for cidr in node["spec"].get("podCIDRs", []):
            assert ipaddress.ip_network(cidr).subnet_of(LAB), (name, cidr)

    pods = api.get("/api/v1/pods")["items"]
    with_ip = [p for p in pods if p["status"].get("podIP")]
    assert any(p["metadata"]["name"] == "addr" for p in with_ip)
    for pod in with_ip:
        ips = [pod["status"]["podIP"], pod["status"].get("hostIP")]
        ips += [i["ip"] for i in pod["status"].get("podIPs", []) + pod["status"].get("hostIPs", [])]
        for ip in filter(None, ips):
            addr = ipaddress.ip_address(ip)
            assert addr in LOOPBACK or addr in LAB, (pod["metadata"]["namespace"], pod["metadata"]["name"], ip)

    for svc in api.get("/api/v1/services")["items"]:
        for ip in svc["spec"].get("clusterIPs", []):
            if ip != "None":
                assert ipaddress.ip_address(ip) in LAB, (svc["metadata"]["name"], ip)
