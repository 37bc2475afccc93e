"""The fake nodes of the local cluster (pure builders; kwok plays their kubelets).

kwok manages the nodes that carry the annotation below. Each node gets its own loopback
InternalIP (kwok serves their kubelet API on loopback) and a podCIDR in 198.19.N.0/24: fake pod
IPs that no interface holds (EndpointSlices refuse loopback addresses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
KWOK_SELECTOR = f"{KWOK_ANNOTATION}={KWOK_ANNOTATION_VALUE}"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class FakeNode:
    name: str
    index: int  # 1..127: InternalIP 127.0.1.<index>, podCIDR 198.19.<index>.0/24
    cpu: str = "16"
    memory: str = "64Gi"
    gpus: int = 0
    gpu_product: str | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def ip(self) -> str:
        return f"127.0.1.{self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"198.19.{self.index}.0/24"


NODES = (
    FakeNode("spe-cpu-1", 1),
    FakeNode("spe-cpu-2", 2),
    FakeNode("spe-gpu-a30", 3, cpu="32", memory="128Gi", gpus=4, gpu_product="NVIDIA-A30"),
    FakeNode("spe-gpu-l40s", 4, cpu="32", memory="128Gi", gpus=2, gpu_product="NVIDIA-L40S"),
)


def node_manifest(node: FakeNode) -> dict:
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "kwok",
        "type": "kwok",
        **node.extra_labels,
    }
    capacity = {"cpu": node.cpu, "memory": node.memory, "pods": "110", "ephemeral-storage": "500Gi"}
    taints = []
    if node.gpus:
        labels.update({
            GPU_PRODUCT_LABEL: node.gpu_product or "unknown",
            "nvidia.com/gpu.count": str(node.gpus),
            "nvidia.com/gpu.present": "true",
        })
        capacity[GPU_RESOURCE] = str(node.gpus)
        # The taint NVIDIA's GPU operator and the managed clouds put on GPU nodes: only pods
        # that tolerate it (i.e. ask for GPUs) land there.
        taints.append({"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": labels,
            "annotations": {
                KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr], "taints": taints},
        # A Node's status is kept on create; kwok's stages fill in conditions and keep these.
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "addresses": [
                {"type": "InternalIP", "address": node.ip},
                {"type": "Hostname", "address": node.name},
            ],
        },
    }
