"""The doctor's checks that need no probe pods: each takes the client and the settings and
returns one CheckResult (never raises for what it finds; an API error is a FAIL)."""

from __future__ import annotations

import os
import tempfile
import textwrap
from typing import Any

import aiohttp

from spe_kube import ApiError, KubeClient, kind_for

from ..settings import SpeSettings
from ..workspaces.names import GPU_PRODUCT_LABEL
from .report import CheckResult, Status

ENCRYPTED_ANNOTATION = "spe.ehds.io/encrypted"
STORAGE_CLASS = kind_for("storage.k8s.io/v1", "StorageClass")
NODE = kind_for("v1", "Node")
WEBHOOKS = kind_for("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
PERMIT = kind_for("spe.ehds.io/v1alpha1", "DataPermit")
GPU_RESOURCE = "nvidia.com/gpu"
# Where the API server keeps the Events of a cluster-scoped object (the operator's Namespace).
EVENTS_NAMESPACE = "default"
# The base manifests' SPE_AUDIT_CHECKPOINT_CONFIGMAP (a settings file need not repeat it).
DEFAULT_CHECKPOINT_CONFIGMAP = "spe-audit-checkpoint"


def _setting(field: str) -> str:
    return SpeSettings.env_key(field)


async def check_storage(kube: KubeClient, spe: SpeSettings) -> CheckResult:
    """The workspace storage class exists and its owner marked it encrypted at rest."""
    name = "storage-class"
    wanted = spe.default_storage_class
    if not wanted:
        return CheckResult(name, Status.FAIL, "no storage class configured for workspace volumes",
                           f"set {_setting('default_storage_class')} in the settings file to a class that "
                           "encrypts at rest")
    if wanted not in spe.encrypted_storage_classes:
        return CheckResult(name, Status.FAIL, f"{wanted} is not listed as encrypted in the settings",
                           f"add it to {_setting('encrypted_storage_classes')} once its volumes are encrypted")
    try:
        sc = await kube.get_or_none(STORAGE_CLASS, wanted)
    except ApiError as exc:
        return CheckResult(name, Status.FAIL, f"cannot read StorageClass {wanted}: {exc}")
    if sc is None:
        return CheckResult(name, Status.FAIL, f"StorageClass {wanted} does not exist",
                           f"create it (your CSI driver's encrypted class) or name an existing one in "
                           f"{_setting('default_storage_class')}")
    marked = (sc["metadata"].get("annotations") or {}).get(ENCRYPTED_ANNOTATION)
    if not marked:
        return CheckResult(name, Status.FAIL,
                           f"StorageClass {wanted} exists but is not marked encrypted",
                           f"after checking that its volumes are encrypted at rest, annotate it: kubectl "
                           f"annotate storageclass {wanted} {ENCRYPTED_ANNOTATION}='<how, e.g. LUKS by the CSI driver>'")
    return CheckResult(name, Status.OK, f"{wanted} ({sc.get('provisioner')}) marked encrypted: {marked}")


async def check_idp(spe: SpeSettings, *, timeout: float = 10.0) -> CheckResult:
    """The identity provider's OIDC discovery document answers and names the configured issuer."""
    name = "identity-provider"
    issuer = spe.idp_issuer_url
    if not issuer:
        return CheckResult(name, Status.FAIL, "no identity provider configured",
                           f"set {_setting('idp_issuer_url')} to the Keycloak realm's URL "
                           "(https://<host>/realms/<realm>)")
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as resp:
                if resp.status != 200:
                    return CheckResult(name, Status.FAIL, f"{url} answered HTTP {resp.status}",
                                       "check the realm name in the issuer URL")
                doc: dict[str, Any] = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return CheckResult(name, Status.FAIL, f"{url} does not answer: {exc.__class__.__name__}: {exc}",
                           "check that the IdP runs and that this cluster can reach it")
    if doc.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        return CheckResult(name, Status.FAIL, f"the IdP calls itself {doc.get('issuer')!r}, not {issuer!r}",
                           f"set {_setting('idp_issuer_url')} to exactly the issuer the IdP announces")
    return CheckResult(name, Status.OK, f"{issuer} answers (token endpoint {doc.get('token_endpoint')})")


async def check_gpu_labels(kube: KubeClient, spe: SpeSettings) -> CheckResult:
    """Every node with GPUs names its model, and every configured model is on some node."""
    name = "gpu-labels"
    try:
        nodes = await kube.list(NODE)
    except ApiError as exc:
        return CheckResult(name, Status.FAIL, f"cannot list nodes: {exc}")
    gpu_nodes = [n for n in nodes if int(n.get("status", {}).get("capacity", {}).get(GPU_RESOURCE, "0") or 0) > 0]
    unlabelled = sorted(n["metadata"]["name"] for n in gpu_nodes
                        if not n["metadata"].get("labels", {}).get(GPU_PRODUCT_LABEL))
    present = {n["metadata"].get("labels", {}).get(GPU_PRODUCT_LABEL) for n in gpu_nodes} - {None}
    missing = sorted(set(spe.gpu_models) - present)
    if unlabelled:
        return CheckResult(name, Status.FAIL, f"GPU nodes without {GPU_PRODUCT_LABEL}: {', '.join(unlabelled)}",
                           "run NVIDIA GPU feature discovery (or label the nodes) so workspaces land on the "
                           "model their permit grants")
    if missing:
        return CheckResult(name, Status.FAIL,
                           f"no node offers {', '.join(missing)} (nodes offer: {', '.join(sorted(present)) or 'none'})",
                           f"correct {_setting('gpu_models')} in the settings file or label the GPU nodes")
    if not spe.gpu_models and not gpu_nodes:
        return CheckResult(name, Status.SKIPPED, "no GPU nodes and no GPU models configured")
    return CheckResult(name, Status.OK, f"{len(gpu_nodes)} GPU node(s): {', '.join(sorted(present))}")


def _probe_permit() -> dict[str, Any]:
    """A DataPermit that passes the schema, sent only as a dry run: the webhook must answer."""
    return {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit",
            "metadata": {"name": "spe-doctor-webhook-probe"},
            "spec": {"permitId": "DOCTOR-PROBE", "purpose": "spe-operator doctor: webhook reachability probe",
                     "applicant": "spe-operator doctor",
                     "members": [{"subject": "doctor@invalid", "role": "researcher"}],
                     "datasets": ["doctor-probe"], "notBefore": "2026-01-01T00:00:00Z",
                     "notAfter": "2026-01-02T00:00:00Z",
                     "ceilings": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1}}}


async def check_webhook(kube: KubeClient, spe: SpeSettings) -> CheckResult:
    """The admission webhook is installed with a CA and answers the API server (a dry-run create)."""
    name = "admission-webhook"
    try:
        cfg = await kube.get_or_none(WEBHOOKS, spe.webhook_configuration_name)
    except ApiError as exc:
        return CheckResult(name, Status.FAIL, f"cannot read the webhook configuration: {exc}")
    if cfg is None:
        return CheckResult(name, Status.FAIL, f"ValidatingWebhookConfiguration {spe.webhook_configuration_name} "
                                              "is not installed", "apply the overlay (kubectl apply -k ...)")
    if not all(w.get("clientConfig", {}).get("caBundle") for w in cfg.get("webhooks", [])):
        return CheckResult(name, Status.FAIL, "the webhook configuration has no caBundle yet: the operator has not "
                                              "started (it injects its CA at start-up)",
                           "check the operator pod: kubectl -n spe-system logs deploy/spe-operator")
    try:
        await kube.request("POST", PERMIT.path(None), params={"dryRun": "All"}, body=_probe_permit())
    except ApiError as exc:
        message = exc.body.get("message", "") if isinstance(exc.body, dict) else str(exc.body)
        if "failed calling webhook" in message or exc.status >= 500:
            return CheckResult(name, Status.FAIL, f"the API server cannot call the webhook: {message}",
                               "check the operator pod is Ready and its Service spe-operator-webhook has endpoints")
        # The webhook answered and refused the probe: it is reachable.
        return CheckResult(name, Status.OK, f"answers (refused the dry-run probe: "
                                            f"{textwrap.shorten(message, 160, placeholder=' ...')})")
    return CheckResult(name, Status.OK, "answers (admitted the dry-run probe)")


def check_audit_sink(spe: SpeSettings) -> CheckResult:
    """In the operator's own pod: the audit trail's directory is writable."""
    name = "audit-sink"
    if not spe.audit_log_path:
        return CheckResult(name, Status.WARN, "no audit log configured: the operator keeps no audit trail",
                           f"set {_setting('audit_log_path')} to a file on the audit volume")
    directory = os.path.dirname(os.path.abspath(spe.audit_log_path))
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult(name, Status.FAIL, f"{directory} is not writable: {exc.strerror}",
                           "check the audit volume (PVC spe-operator-audit) is bound and writable by uid 65532")
    return CheckResult(name, Status.OK, f"{directory} writable")


async def check_audit_published(kube: KubeClient, spe: SpeSettings) -> CheckResult:
    """From outside the operator's pod: its trail is written. Either a signed checkpoint was
    published (a trail publishes one at start once it holds records, every 1,000 records and at
    shutdown), or the operator's own start-up check found its audit volume writable (the
    newest audit-sink Event of its Namespace)."""
    name = "audit-sink"
    configmap = spe.audit_checkpoint_configmap or DEFAULT_CHECKPOINT_CONFIGMAP
    try:
        cm = await kube.get_or_none(kind_for("v1", "ConfigMap"), configmap, spe.operator_namespace)
        events = await kube.list(kind_for("v1", "Event"), EVENTS_NAMESPACE, field_selector=(
            f"involvedObject.kind=Namespace,involvedObject.name={spe.operator_namespace}"))
    except ApiError as exc:
        return CheckResult(name, Status.FAIL, f"cannot read the audit checkpoint or the operator's events: {exc}")
    if cm and cm.get("data"):
        return CheckResult(name, Status.OK, f"checkpoint seq {cm['data'].get('seq')} published in "
                                            f"{spe.operator_namespace}/{configmap}")
    mine = sorted((e for e in events if (e.get("message") or "").startswith(name + ":")),
                  key=lambda e: e.get("lastTimestamp") or e["metadata"].get("creationTimestamp") or "")
    if mine and mine[-1].get("reason") == "PreflightPassed":
        return CheckResult(name, Status.OK, f"the operator found its audit volume writable at start "
                                            f"({mine[-1].get('lastTimestamp')}); no checkpoint published yet")
    if mine:
        return CheckResult(name, Status.FAIL, f"the operator reported at start: {mine[-1].get('message')}",
                           "check the audit volume (PVC spe-operator-audit) and the Secret spe-audit-signing-key")
    return CheckResult(name, Status.FAIL, f"no audit checkpoint published in {spe.operator_namespace}/"
                                          f"{configmap} and no start-up report from the operator: it is not "
                                          "running or not writing its trail",
                       "check the operator pod: kubectl -n spe-system logs deploy/spe-operator")
