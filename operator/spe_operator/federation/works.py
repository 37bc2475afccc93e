"""Builders of the ManifestWorks central sends to its nodes (pure: inputs in, manifests out).

Which node holds what: each node's ManagedCluster at central carries
``federation.spe.ehds.io/tier`` (2 or 3) and one label per dataset it holds,
``dataset.federation.spe.ehds.io/<dataset>=held``. A DataPermit naming datasets goes, as one
ManifestWork ``spe-permit-<permit>``, to every tier-3 node holding at least one of them, carrying
the permit with its dataset list cut down to that node's datasets. Each joined node (any tier)
also gets one ManifestWork ``spe-federation``: central's heartbeat, the approved catalogue Tools
(tier 3 only), and two read-only references through which the node's catalogue and audit
checkpoint come back as status feedback.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spe_kube import register_kind

from ..children import LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_PERMIT, MANAGED_BY, owner_reference
from . import (CATALOGUE_CONFIGMAP, CHECKPOINT_CONFIGMAP, COMPONENT, DATASET_LABEL_PREFIX, HEARTBEAT_CONFIGMAP, HELD,
               LABEL_MIRRORED, LABEL_NODE, LABEL_TIER, PERMIT_TIER)

WORK_API = "work.open-cluster-management.io/v1"
MANIFEST_WORK = register_kind(WORK_API, "ManifestWork", "manifestworks", True)
MANAGED_CLUSTER = register_kind("cluster.open-cluster-management.io/v1", "ManagedCluster", "managedclusters", False)
NODE_WORK = "spe-federation"
PERMIT_WORK_PREFIX = "spe-permit-"
# Status feedback names (the ``name`` of each JSONPath rule); the catalogue reads these.
FEEDBACK_DATASETS = "datasets"
FEEDBACK_CHECKPOINT = "checkpoint"
FEEDBACK_PHASE = "phase"
# Labels and annotations of a central object that are central's business, not the node's.
_DROP_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                  "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "selfLink")


@dataclass(frozen=True)
class Node:
    """A joined node as central sees it (its ManagedCluster)."""

    name: str
    tier: int | None
    datasets: frozenset[str]

    @property
    def receives_permits(self) -> bool:
        return self.tier == PERMIT_TIER


def node_from_managed_cluster(mc: Mapping[str, Any]) -> Node:
    md = mc["metadata"]
    labels = md.get("labels") or {}
    try:
        tier = int(labels.get(LABEL_TIER, ""))
    except ValueError:
        tier = None
    held = frozenset(k[len(DATASET_LABEL_PREFIX):] for k, v in labels.items()
                     if k.startswith(DATASET_LABEL_PREFIX) and v == HELD)
    return Node(md["name"], tier, held)


def joined(mc: Mapping[str, Any]) -> bool:
    """Central accepted the node (hubAcceptsClient) and it is not being removed."""
    return bool((mc.get("spec") or {}).get("hubAcceptsClient")) and not mc["metadata"].get("deletionTimestamp")


def held_datasets(clusters: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every dataset a joined node holds (central's admission accepts permits naming them)."""
    return {d for mc in clusters if joined(mc) for d in node_from_managed_cluster(mc).datasets}


def permit_targets(permit: Mapping[str, Any], nodes: Iterable[Node]) -> dict[str, list[str]]:
    """node name -> the permit's datasets that node holds, for every tier-3 node holding any."""
    wanted = list((permit.get("spec") or {}).get("datasets") or [])
    out = {}
    for node in nodes:
        if not node.receives_permits:
            continue
        held = [d for d in wanted if d in node.datasets]
        if held:
            out[node.name] = held
    return out


def _clean_metadata(md: Mapping[str, Any], extra_labels: Mapping[str, str]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in md.items() if k not in _DROP_METADATA}
    annotations = {k: v for k, v in (out.pop("annotations", None) or {}).items()
                   if not k.startswith("spe.ehds.io/") and k != "kubectl.kubernetes.io/last-applied-configuration"}
    if annotations:
        out["annotations"] = annotations
    out["labels"] = {**(out.get("labels") or {}), **extra_labels}
    return out


def mirrored_permit(permit: Mapping[str, Any], datasets: list[str]) -> dict[str, Any]:
    """The node's copy of a central permit: the same spec, only the node's datasets, no status."""
    spec = copy.deepcopy(permit["spec"])
    spec["datasets"] = list(datasets)
    return {"apiVersion": permit["apiVersion"], "kind": "DataPermit",
            "metadata": _clean_metadata(permit["metadata"], {LABEL_MIRRORED: "true"}), "spec": spec}


def mirrored_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": tool["apiVersion"], "kind": "Tool",
            "metadata": _clean_metadata(tool["metadata"], {LABEL_MIRRORED: "true"}),
            "spec": copy.deepcopy(tool["spec"])}


def _work(name: str, node: str, manifests: list[dict], configs: list[dict], labels: dict[str, str],
          owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": node,
                          "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: COMPONENT, LABEL_NODE: node,
                                     **labels}}
    if owner is not None:
        # Not blocking: the permit's deletion need not wait for OCM to clean the node up (and
        # the operator needs no rights on datapermits/finalizers).
        md["ownerReferences"] = [{**owner_reference(owner, controller=False), "blockOwnerDeletion": False}]
    return {"apiVersion": WORK_API, "kind": "ManifestWork", "metadata": md,
            "spec": {"workload": {"manifests": manifests},
                     # Deleting the work deletes what it applied on the node (the permit, its
                     # namespace and workspaces through the node's own owner references).
                     "deleteOption": {"propagationPolicy": "Foreground"},
                     "manifestConfigs": configs}}


def _ssa(group: str, resource: str, name: str, namespace: str | None = None,
         feedback: list[tuple[str, str]] | None = None, strategy: str = "ServerSideApply") -> dict[str, Any]:
    ident = {"group": group, "resource": resource, "name": name}
    if namespace:
        ident["namespace"] = namespace
    cfg: dict[str, Any] = {"resourceIdentifier": ident, "updateStrategy": {"type": strategy}}
    if strategy == "ServerSideApply":
        cfg["updateStrategy"]["serverSideApply"] = {"force": True}
    if feedback:
        cfg["feedbackRules"] = [{"type": "JSONPaths",
                                 "jsonPaths": [{"name": n, "path": p} for n, p in feedback]}]
    return cfg


def permit_work(permit: Mapping[str, Any], node: str, datasets: list[str]) -> dict[str, Any]:
    """``spe-permit-<permit>`` in the node's namespace at central, owned by the permit (so deleting
    the permit at central deletes it on the node)."""
    name = permit["metadata"]["name"]
    group = permit["apiVersion"].split("/")[0]
    return _work(f"{PERMIT_WORK_PREFIX}{name}", node, [mirrored_permit(permit, datasets)],
                 [_ssa(group, "datapermits", name, feedback=[(FEEDBACK_PHASE, ".status.phase")])],
                 {LABEL_PERMIT: name}, owner=permit)


def heartbeat_configmap(namespace: str, sent_at: datetime) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": HEARTBEAT_CONFIGMAP, "namespace": namespace,
                         "labels": {LABEL_MIRRORED: "true"}},
            "data": {"sentAt": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def node_work(node: Node, namespace: str, sent_at: datetime, tools: Iterable[Mapping[str, Any]],
              checkpoint_namespace: str) -> dict[str, Any]:
    """``spe-federation`` for one node: heartbeat, Tools (tier 3), and the read-only references
    whose feedback brings the node's catalogue (``namespace``) and audit checkpoint (the
    operator's namespace, ``checkpoint_namespace``) up."""
    manifests = [heartbeat_configmap(namespace, sent_at)]
    configs = [_ssa("", "configmaps", HEARTBEAT_CONFIGMAP, namespace)]
    if node.receives_permits:
        for tool in sorted(tools, key=lambda t: t["metadata"]["name"]):
            manifests.append(mirrored_tool(tool))
            configs.append(_ssa(tool["apiVersion"].split("/")[0], "tools", tool["metadata"]["name"]))
    for cm, ns, feedback in ((CATALOGUE_CONFIGMAP, namespace, (FEEDBACK_DATASETS, ".data.datasets")),
                             (CHECKPOINT_CONFIGMAP, checkpoint_namespace,
                              (FEEDBACK_CHECKPOINT, ".data.checkpoint\\.json"))):
        manifests.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm, "namespace": ns}})
        configs.append(_ssa("", "configmaps", cm, ns, feedback=[feedback], strategy="ReadOnly"))
    return _work(NODE_WORK, node.name, manifests, configs, {})


def approved_tools(tools: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Tools a node may use: approved at central and not revoked."""
    return [t for t in tools if (t.get("status") or {}).get("phase") == "Approved"
            and not (t.get("spec") or {}).get("revoked")]


def desired_works(permits: Iterable[Mapping[str, Any]], clusters: Iterable[Mapping[str, Any]],
                  tools: Iterable[Mapping[str, Any]], namespace: str, sent_at: datetime,
                  checkpoint_namespace: str) -> list[dict[str, Any]]:
    """Every ManifestWork central should hold now."""
    nodes = [node_from_managed_cluster(mc) for mc in clusters if joined(mc)]
    tools = approved_tools(tools)
    works = [node_work(node, namespace, sent_at, tools, checkpoint_namespace) for node in nodes]
    for permit in permits:
        if permit["metadata"].get("deletionTimestamp"):
            continue
        for node, datasets in sorted(permit_targets(permit, nodes).items()):
            works.append(permit_work(permit, node, datasets))
    return works


def feedback_values(work: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(resource, namespace, name) -> {feedback name: value} from a ManifestWork's status."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in ((work.get("status") or {}).get("resourceStatus") or {}).get("manifests") or []:
        meta = entry.get("resourceMeta") or {}
        values = {}
        for v in (entry.get("statusFeedback") or {}).get("values") or []:
            fv = v.get("fieldValue") or {}
            for key in ("string", "integer", "boolean"):
                if key in fv:
                    values[v["name"]] = fv[key]
                    break
            else:
                if "jsonRaw" in fv:
                    values[v["name"]] = json.loads(fv["jsonRaw"])
        out[(meta.get("resource", ""), meta.get("namespace", ""), meta.get("name", ""))] = values
    return out
