"""Which workspace uses which GPU: NVML's processes, mapped PID -> pod (cgroup) -> Workspace
(the pod's labels). Pure: the inventory, the PID map and the node's workspace pods in, one
sample per workspace pod out.

A server holds its GPUs whether or not a process runs on them (the device plugin allocated
them to its pod); a GPU without any process of the server does no work for it, so a server
with no GPU process is GPU-idle. Utilisation is the mean over the GPUs the server holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .nvml import Inventory

# The labels the operator puts on a workspace's server pod (spe_operator.children).
LABEL_WORKSPACE = "spe.ehds.io/workspace"
LABEL_PERMIT = "spe.ehds.io/permit"
LABEL_COMPONENT = "app.kubernetes.io/component"
COMPONENT_NOTEBOOK = "notebook"
POD_SELECTOR = f"{LABEL_WORKSPACE},{LABEL_COMPONENT}={COMPONENT_NOTEBOOK}"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class WorkspacePod:
    namespace: str
    workspace: str
    permit: str
    pod_uid: str
    gpus: int  # nvidia.com/gpu the pod asked for

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> "WorkspacePod":
        md, spec = pod.get("metadata", {}), pod.get("spec", {})
        labels = md.get("labels") or {}
        gpus = 0
        for c in spec.get("containers", []) or []:
            limits = ((c.get("resources") or {}).get("limits") or {})
            try:
                gpus += int(str(limits.get(GPU_RESOURCE, 0)))
            except ValueError:
                pass
        return cls(md.get("namespace", ""), labels.get(LABEL_WORKSPACE, ""), labels.get(LABEL_PERMIT, ""),
                   md.get("uid", ""), gpus)


@dataclass(frozen=True)
class WorkspaceSample:
    pod: WorkspacePod
    time: datetime
    uuids: tuple[str, ...]       # GPUs (or MIG instances) its processes run on
    utilization: int             # mean over the held GPUs, percent
    peak: int | None             # highest utilisation of its GPUs; None: not measurable (MIG)
    memory_used: int             # bytes its processes use
    memory_total: int            # of the GPUs its processes run on


def attribute(inventory: Inventory, pid_pods: dict[int, str], pods: list[WorkspacePod],
              now: datetime) -> dict[str, WorkspaceSample]:
    """One sample per workspace pod that holds GPUs, keyed by pod UID."""
    by_uid = {p.pod_uid: p for p in pods if p.gpus > 0}
    # per pod: device UUID -> (utilisation or None, memory total); PID -> memory used (once per PID)
    devices: dict[str, dict[str, tuple[int | None, int]]] = {uid: {} for uid in by_uid}
    memory: dict[str, dict[int, int]] = {uid: {} for uid in by_uid}
    for gpu in inventory.gpus:
        if gpu.lost or gpu.uuid is None:
            continue
        # A MIG instance is a device of its own (NVML measures no utilisation in MIG mode); a
        # process the parent lists as well is its instance's.
        on_instances = {p.pid for m in gpu.mig for p in m.processes}
        units = [(gpu.uuid, gpu.utilization, gpu.memory_total,
                  tuple(p for p in gpu.processes if p.pid not in on_instances)),
                 *((m.uuid, None, m.memory_total, m.processes) for m in gpu.mig)]
        for uuid, util, total, processes in units:
            for proc in processes:
                uid = pid_pods.get(proc.pid)
                if uid not in devices:
                    continue
                devices[uid][uuid] = (util, total)
                memory[uid][proc.pid] = max(memory[uid].get(proc.pid, 0), proc.memory_used or 0)
    out: dict[str, WorkspaceSample] = {}
    for uid, pod in by_uid.items():
        used = devices[uid]
        utils = [u for u, _ in used.values()]
        measured = [u for u in utils if u is not None]
        out[uid] = WorkspaceSample(
            pod=pod, time=now, uuids=tuple(sorted(used)),
            utilization=min(100, round(sum(measured) / max(pod.gpus, len(used), 1))),
            peak=max(measured, default=0) if len(measured) == len(utils) else None,
            memory_used=sum(memory[uid].values()), memory_total=sum(t for _, t in used.values()))
    return out
