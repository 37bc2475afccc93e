"""The operator's one typed settings object, built once at start-up and passed down.

Nothing here reads the environment at import time: ``SpeSettings.from_env()`` is called by the
command line entry point (or a test fixture builds ``SpeSettings(...)`` directly).
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "SPE_"


class SpeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- how the operator reaches the API server -----------------------------------------------
    kubeconfig: str | None = Field(None, description="Kubeconfig path (default: $KUBECONFIG, in-cluster, ~/.kube/config).")

    # --- where the operator lives -------------------------------------------------------------
    operator_namespace: str = Field("spe-system", description="Namespace of the operator, hub and egress gateway.")
    namespace_prefix: str = Field("spe-", description="Prefix of the per-permit namespaces (spe-<permit>).")
    standalone: bool = Field(True, description="Run without Kopf peering (one operator replica).")
    peering_name: str = Field("spe-operator", description="Kopf peering object name when not standalone.")
    leader_election: bool = Field(
        False, description="Several replicas: only the holder of the Lease leader_lease_name runs the reconcilers "
                           "and the webhook (operator/spe_operator/leader.py).")
    leader_lease_name: str = Field("spe-operator", description="Lease (in the operator namespace) of the leader election.")
    leader_lease_seconds: int = Field(15, description="A leader that has not renewed for this long is replaced.")
    health_port: int | None = Field(
        None, description="Port of /healthz (liveness) and /readyz (leading and ready) for the kubelet (none: not served).")
    federation_role: Literal["central", "node"] = Field(
        "node", description="The tier of this installation: the central reference cluster (issues DataPermits, "
                            "hosts the catalogue) or a hospital's federated node. Reported by the doctor and in "
                            "the operator's start-up Events.")

    # --- framework timeouts (seconds) ---------------------------------------------------------
    watch_server_timeout: int = Field(300, description="Server-side timeout of each watch request.")
    watch_client_timeout: int = Field(330, description="Client-side timeout of each watch request.")
    request_timeout: float = Field(30.0, description="Timeout of each ordinary API request.")
    connect_timeout: float = Field(10.0, description="TCP/TLS connect timeout to the API server.")
    crd_wait_timeout: float = Field(300.0, description="How long start-up waits for the SPE CRDs to be served.")
    reconcile_interval: float = Field(60.0, description="Period of the level-based re-reconcile timer.")
    max_workers: int = Field(20, description="Kopf's limit of concurrently running sync handlers.")

    # --- admission webhook --------------------------------------------------------------------
    webhook_enabled: bool = Field(True, description="Serve the validating admission webhook.")
    webhook_host: str = Field("127.0.0.1", description="Address the webhook server binds and advertises.")
    webhook_port: int = Field(9443, description="Port of the webhook server.")
    webhook_cert_dir: str | None = Field(None, description="Directory with tls.crt/tls.key (self-signed when unset).")
    webhook_service: str | None = Field(
        None, description="Service in front of the webhook (in-cluster): the operator keeps its TLS in a Secret and "
                          "injects the caBundle into the installed configuration. Unset: the API server dials "
                          "https://webhook_host:webhook_port and the operator applies the whole configuration.")
    webhook_configuration_name: str = Field("spe-admission", description="Name of the ValidatingWebhookConfiguration.")

    # --- identities of the other components ---------------------------------------------------
    hub_service_account: str = Field("spe-hub", description="Service account of JupyterHub in the operator namespace.")
    egress_service_account: str = Field("spe-egress", description="Service account of the egress gateway.")
    hub_proxy_port: int = Field(8000, description="Port of the hub's proxy, allowed into notebook pods.")
    hub_api_port: int = Field(8081, description="Port of the hub API, reachable from notebook pods.")
    egress_port: int = Field(8080, description="Port of the egress gateway, reachable from notebook pods.")
    notebook_port: int = Field(8888, description="Port of the notebook server in workspace pods.")
    # Workspaces have no DNS (a resolver is a tunnel out): the operator injects these Services'
    # addresses into each server pod (hostAliases) and their URLs (SPE_HUB_API_URL, SPE_EGRESS_URL).
    hub_service: str = Field("spe-hub", description="Service of the hub API in the operator namespace.")
    egress_service: str = Field("spe-egress", description="Service of the egress gateway in the operator namespace.")

    # --- permit namespaces (DataPermit reconciler) ---------------------------------------------
    pod_security_version: str = Field("v1.35", description="Pod Security Standards version enforced in permit namespaces.")

    # --- storage ------------------------------------------------------------------------------
    encrypted_storage_classes: list[str] = Field(default_factory=list, description="Storage classes known to encrypt at rest.")
    default_storage_class: str | None = Field(None, description="Class used for workspace volumes (must be encrypted).")
    allow_unencrypted_storage: bool = Field(False, description="Development only: allow an unencrypted class.")

    # --- workspaces ---------------------------------------------------------------------------
    workspace_uid: int = Field(1000, description="UID of the notebook process (the images' jovyan user).")
    workspace_gid: int = Field(100, description="GID of the notebook process and fsGroup of its volumes.")
    workspace_home_dir: str = Field("/home/jovyan", description="Where the home volume is mounted (outputs at <home>/outputs).")
    workspace_tmp_size: str = Field("2Gi", description="Size limit of the writable /tmp (emptyDir).")
    workspace_shm_size: str = Field("1Gi", description="Size limit of /dev/shm (memory-backed, counts against the memory limit).")
    workspace_workers: int = Field(32, description="Workspaces reconciled concurrently (a reconcile mostly waits on the API server; 8 queued a burst of 100 behind slow status writes).")
    gpu_usage_max_age: float = Field(
        300.0, description="Seconds a GPU agent's status.gpuUsage counts for the GPU-idle stop (older: ignored).")

    # --- what the preflight doctor checks the cluster against ----------------------------------
    idp_issuer_url: str | None = Field(
        None, description="OIDC issuer of the identity provider (Keycloak realm URL); the doctor checks that its "
                          "discovery document answers (none: not checked, reported as such).")
    gpu_models: list[str] = Field(
        default_factory=list, description="GPU models this cluster offers (values of nvidia.com/gpu.product); the "
                                          "doctor checks that each has a node carrying the label.")

    # --- audit and telemetry ------------------------------------------------------------------
    audit_log_path: str | None = Field(None, description="Path of the hash-chained audit log (none: no audit file).")
    audit_signing_key: str | None = Field(None, description="Ed25519 private key (PEM file) signing audit checkpoints.")
    audit_checkpoint_configmap: str | None = Field(
        None, description="ConfigMap in the operator namespace the latest audit checkpoint is published to "
                          "(none: not published).")
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP base URL (e.g. http://otel-collector:4318): audit records, traces and "
                          "metrics are exported there (none: nothing is exported).")

    @classmethod
    def env_key(cls, field: str) -> str:
        return ENV_PREFIX + field.upper()

    @classmethod
    def unknown_keys(cls, environ: dict[str, str]) -> dict[str, str | None]:
        """``SPE_*`` keys that name no setting -> the closest setting's key (a likely typo) or None."""
        known = [cls.env_key(name) for name in cls.model_fields]
        return {key: next(iter(difflib.get_close_matches(key, known, n=1)), None)
                for key in sorted(environ) if key.startswith(ENV_PREFIX) and key not in known}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, strict: bool = False,
                 **overrides: Any) -> "SpeSettings":
        """Build settings from ``SPE_<FIELD>`` variables (lists comma-separated), then overrides.

        ``strict``: refuse any ``SPE_*`` variable that is not a setting (the installed operator's
        environment is its settings file and nothing else, so an unknown key is a typo or a
        setting this version does not read; either way it must not be silently ignored)."""
        environ = os.environ if environ is None else environ
        if strict and (unknown := cls.unknown_keys(dict(environ))):
            raise UnknownSettingsError(unknown)
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if field.annotation == list[str]:
                values[name] = [item.strip() for item in raw.split(",") if item.strip()]
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def permit_namespace(self, permit_name: str) -> str:
        return f"{self.namespace_prefix}{permit_name}"


class UnknownSettingsError(ValueError):
    """Keys in the settings that this operator does not read."""

    def __init__(self, unknown: dict[str, str | None]):
        self.unknown = unknown
        parts = [f"{key} (did you mean {hint}?)" if hint else key for key, hint in unknown.items()]
        super().__init__("the settings carry keys this operator does not read: " + ", ".join(parts)
                         + "; remove them or correct their names (the settings are the fields of "
                           "spe_operator.settings.SpeSettings, as SPE_<FIELD>)")
