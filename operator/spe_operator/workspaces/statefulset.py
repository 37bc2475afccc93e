"""The notebook server: a StatefulSet of 0 (stopped) or 1 (running) replica.

Security invariants, all set here and asserted one by one in the unit tests:
the Tool's image by digest; non-root (UID/GID from the settings, ``runAsNonRoot``); read-only
root filesystem with a writable home volume and a size-limited ``/tmp``; no privilege
escalation; all capabilities dropped; seccomp ``RuntimeDefault``; no service-account token;
no service links; datasets read-only at ``/data/<dataset>`` (volume and mount; only the volume's
``data/``), each verified first by an init container (``spe-ingest verify`` against the site's
public key, whole volume read-only, the notebook's security context); CPU and memory
requests equal to limits; GPUs as an ``nvidia.com/gpu`` limit pinned to the model's nodes;
no DNS (``dnsPolicy: None``, the only nameserver the pod's own loopback, where nothing answers:
a resolver that forwards queries is a tunnel out) -- the hub's and the gateway's addresses are
injected as ``hostAliases`` and their URLs as environment variables, with the workspace and
its namespace (what ``spe-export`` needs beside the server's hub token, which the hub's Secret
carries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spe_api import Tool, Workspace
from spe_api import datasetvolume as dv

from ..children import standard_labels
from ..settings import SpeSettings
from . import names
from .datasets import DatasetMount

TERMINATION_GRACE_SECONDS = 30
REVISION_HISTORY = 2
# The API server requires a nameserver with dnsPolicy None; the pod's own loopback answers
# nothing (no DNS server runs in a workspace, and an unprivileged process cannot bind port 53).
NO_NAMESERVER = "127.0.0.1"


@dataclass(frozen=True)
class ServiceAddress:
    """A component a workspace may reach (the hub API, the egress gateway): its Service's
    cluster IP and the names it answers to, written into the pod's /etc/hosts."""

    ip: str
    hostnames: tuple[str, ...]


def service_hostnames(service: str, namespace: str) -> tuple[str, ...]:
    return (f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}")


def component_urls(settings: SpeSettings) -> dict[str, str]:
    """SPE_HUB_API_URL and SPE_EGRESS_URL, by the names the hostAliases resolve."""
    ns = settings.operator_namespace
    return {
        "SPE_HUB_API_URL": f"http://{settings.hub_service}.{ns}.svc:{settings.hub_api_port}/hub/api",
        "SPE_EGRESS_URL": f"http://{settings.egress_service}.{ns}.svc:{settings.egress_port}",
    }


def pod_labels(ws: Workspace) -> dict[str, str]:
    """The labels the permit's NetworkPolicies and the hub select the server by."""
    return standard_labels(component=names.COMPONENT_NOTEBOOK, permit=ws.spec.permit, workspace=ws.name)


def _resources(ws: Workspace) -> dict[str, Any]:
    amounts: dict[str, str] = {"cpu": ws.spec.resources.cpu, "memory": ws.spec.resources.memory}
    if ws.gpu_count:
        amounts[names.GPU_RESOURCE] = str(ws.gpu_count)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def container_security_context(settings: SpeSettings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": settings.workspace_uid,
        "runAsGroup": settings.workspace_gid,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(settings: SpeSettings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": settings.workspace_uid,
        "runAsGroup": settings.workspace_gid,
        "fsGroup": settings.workspace_gid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _volumes(ws: Workspace, mounts: tuple[DatasetMount, ...], settings: SpeSettings) -> tuple[list, list]:
    home = settings.workspace_home_dir.rstrip("/") or "/home"
    volumes: list[dict[str, Any]] = [
        {"name": names.HOME_VOLUME, "persistentVolumeClaim": {"claimName": names.home_claim_name(ws.name)}},
        {"name": names.OUTPUTS_VOLUME, "persistentVolumeClaim": {"claimName": names.outputs_claim_name(ws.name)}},
        {"name": names.TMP_VOLUME, "emptyDir": {"sizeLimit": settings.workspace_tmp_size}},
        {"name": names.SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": settings.workspace_shm_size}},
        # Written by the hub's spawner (its API token for this server); optional so the server
        # can be started without the hub, e.g. by `kubectl patch`.
        {"name": names.HUB_SECRET_VOLUME, "secret": {
            "secretName": names.hub_secret_name(ws.name), "optional": True, "defaultMode": 0o440}},
    ]
    mounts_out: list[dict[str, Any]] = [
        {"name": names.HOME_VOLUME, "mountPath": home},
        {"name": names.OUTPUTS_VOLUME, "mountPath": f"{home}/outputs"},
        {"name": names.TMP_VOLUME, "mountPath": names.TMP_DIR},
        {"name": names.SHM_VOLUME, "mountPath": names.SHM_DIR},
        {"name": names.HUB_SECRET_VOLUME, "mountPath": names.HUB_SECRET_DIR, "readOnly": True},
    ]
    for mount in mounts:
        volume = names.dataset_volume_in_pod(mount.name)
        volumes.append({"name": volume, "persistentVolumeClaim": {
            "claimName": names.dataset_claim_name(mount.name, mount.revision), "readOnly": True}})
        # Only data/: the quarantine, the report and the journal beside it are never visible.
        mounts_out.append({"name": volume, "mountPath": names.dataset_mount_path(mount.name),
                           "subPath": dv.DATA_SUBPATH, "readOnly": True})
    if mounts:
        volumes.append({"name": names.DATASET_KEY_VOLUME, "downwardAPI": {"defaultMode": 0o444, "items": [{
            "path": names.DATASET_KEY_FILE,
            "fieldRef": {"fieldPath": f"metadata.annotations['{names.ANNOTATION_DATASET_PUBLIC_KEY}']"}}]}})
    return volumes, mounts_out


def build_verify_containers(ws: Workspace, mounts: tuple[DatasetMount, ...], settings: SpeSettings) -> list[dict[str, Any]]:
    """One init container per dataset: ``spe-ingest verify`` of the whole volume (the signed
    manifest beside ``data/``) against the site's public key. A tampered, missing or unlisted
    file, or a manifest signed by another key, fails it: the notebook never starts on it, and
    the problems (stderr, as the termination message) name the file."""
    out = []
    for mount in mounts:
        out.append({
            "name": names.verify_container_name(mount.name),
            "image": settings.ingest_image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["spe-ingest", "verify", names.VERIFY_DATASET_DIR,
                        "--public-key", f"{names.DATASET_KEY_DIR}/{names.DATASET_KEY_FILE}"],
            # The notebook's own amounts: the pod's effective request does not grow.
            "resources": _resources_without_gpus(ws),
            "securityContext": container_security_context(settings),
            "volumeMounts": [
                {"name": names.dataset_volume_in_pod(mount.name), "mountPath": names.VERIFY_DATASET_DIR,
                 "readOnly": True},
                {"name": names.DATASET_KEY_VOLUME, "mountPath": names.DATASET_KEY_DIR, "readOnly": True},
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        })
    return out


def _resources_without_gpus(ws: Workspace) -> dict[str, Any]:
    amounts = {"cpu": ws.spec.resources.cpu, "memory": ws.spec.resources.memory}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _env(ws: Workspace, settings: SpeSettings) -> list[dict[str, str]]:
    home = settings.workspace_home_dir.rstrip("/") or "/home"
    return [
        {"name": "HOME", "value": home},
        # what spe-export checks against its token's workspace (the gateway takes both from the token)
        {"name": "SPE_WORKSPACE", "value": ws.name},
        {"name": "SPE_NAMESPACE", "value": ws.namespace},
        {"name": "SPE_PERMIT", "value": ws.spec.permit},
        {"name": "SPE_DATA_DIR", "value": names.DATA_ROOT},
        {"name": "SPE_OUTPUTS_DIR", "value": f"{home}/outputs"},
        {"name": "SPE_NOTEBOOK_PORT", "value": str(settings.notebook_port)},
        {"name": "SPE_HUB_CREDENTIALS_DIR", "value": names.HUB_SECRET_DIR},
        *({"name": k, "value": v} for k, v in component_urls(settings).items()),
    ]


def _probe(period: int, failures: int, initial_delay: int = 0) -> dict[str, Any]:
    # TCP, not HTTP: the server's base URL is chosen by the hub (/user/<name>/), and the probe
    # must not depend on it or on the hub's authentication.
    probe: dict[str, Any] = {"tcpSocket": {"port": names.PORT_NAME}, "periodSeconds": period,
                             "timeoutSeconds": 2, "failureThreshold": failures}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def build_pod_spec(ws: Workspace, tool: Tool, mounts: tuple[DatasetMount, ...], settings: SpeSettings,
                   addresses: tuple[ServiceAddress, ...] = ()) -> dict[str, Any]:
    volumes, volume_mounts = _volumes(ws, mounts, settings)
    container = {
        "name": names.CONTAINER_NAME,
        "image": tool.spec.image,
        # Pinned by digest: the node's copy is exactly the approved image.
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": names.PORT_NAME, "containerPort": settings.notebook_port, "protocol": "TCP"}],
        "env": _env(ws, settings),
        "resources": _resources(ws),
        "securityContext": container_security_context(settings),
        "volumeMounts": volume_mounts,
        # Five minutes to come up (large images, first JupyterLab build), then probed steadily.
        "startupProbe": _probe(period=2, failures=150),
        "readinessProbe": _probe(period=5, failures=3),
        "livenessProbe": _probe(period=20, failures=6),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    node_selector = {"kubernetes.io/os": "linux"}
    tolerations: list[dict[str, Any]] = []
    if ws.gpu_count:
        node_selector[names.GPU_PRODUCT_LABEL] = ws.gpu_model or ""
        tolerations.append({"key": names.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": [NO_NAMESERVER], "searches": [], "options": [{"name": "ndots", "value": "0"}]},
        "securityContext": pod_security_context(settings),
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "nodeSelector": node_selector,
        "containers": [container],
        "volumes": volumes,
    }
    if mounts:
        spec["initContainers"] = build_verify_containers(ws, mounts, settings)
    if tolerations:
        spec["tolerations"] = tolerations
    if addresses:
        spec["hostAliases"] = [{"ip": a.ip, "hostnames": list(a.hostnames)} for a in addresses]
    return spec


def pod_annotations(tool: Tool, mounts: tuple[DatasetMount, ...], settings: SpeSettings) -> dict[str, str]:
    out = {names.ANNOTATION_TOOL: tool.name}
    if mounts and settings.dataset_public_key:
        out[names.ANNOTATION_DATASET_PUBLIC_KEY] = settings.dataset_public_key
    return out


def build_statefulset(ws: Workspace, tool: Tool, mounts: tuple[DatasetMount, ...], settings: SpeSettings,
                      *, replicas: int, addresses: tuple[ServiceAddress, ...] = ()) -> dict[str, Any]:
    """The server's StatefulSet (``replicas`` 0 or 1); adopted by the caller."""
    if replicas not in (0, 1):
        raise ValueError(f"a workspace runs 0 or 1 server, not {replicas}")
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": names.statefulset_name(ws.name),
            "namespace": ws.namespace,
            "annotations": {names.ANNOTATION_TOOL: tool.name},
        },
        "spec": {
            "replicas": replicas,
            "serviceName": names.service_name(ws.name),
            "podManagementPolicy": "Parallel",
            "revisionHistoryLimit": REVISION_HISTORY,
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": names.selector_labels(ws.name)},
            "template": {
                "metadata": {"labels": pod_labels(ws), "annotations": pod_annotations(tool, mounts, settings)},
                "spec": build_pod_spec(ws, tool, mounts, settings, addresses),
            },
        },
    }
