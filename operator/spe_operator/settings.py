"""The operator's one typed settings object, built once at start-up and passed down.

Nothing here reads the environment at import time: ``SpeSettings.from_env()`` is called by the
command line entry point (or a test fixture builds ``SpeSettings(...)`` directly).
"""

from __future__ import annotations

import difflib
import json
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ENV_PREFIX = "SPE_"


class SpeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- how the operator reaches the API server -----------------------------------------------
    kubeconfig: str | None = Field(None, description="Kubeconfig path (default: $KUBECONFIG, in-cluster, ~/.kube/config).")

    # --- where the operator lives -------------------------------------------------------------
    operator_namespace: str = Field("spe-system", description="Namespace of the operator, hub and egress gateway.")
    standalone: bool = Field(True, description="Run without Kopf peering (one operator replica).")
    peering_name: str = Field("spe-operator", description="Kopf peering object name when not standalone.")
    leader_election: bool = Field(
        False, description="Several replicas: only the holder of the Lease leader_lease_name runs the reconcilers "
                           "and the webhook (operator/spe_operator/leader.py).")
    leader_lease_name: str = Field("spe-operator", description="Lease (in the operator namespace) of the leader election.")
    leader_lease_seconds: int = Field(15, description="A leader that has not renewed for this long is replaced.")
    health_port: int | None = Field(
        None, description="Port of /healthz (liveness) and /readyz (leading and ready) for the kubelet (none: not served).")

    # --- framework timeouts (seconds) ---------------------------------------------------------
    watch_server_timeout: int = Field(300, description="Server-side timeout of each watch request.")
    watch_client_timeout: int = Field(330, description="Client-side timeout of each watch request.")
    request_timeout: float = Field(30.0, description="Timeout of each ordinary API request.")
    connect_timeout: float = Field(10.0, description="TCP/TLS connect timeout to the API server.")
    crd_wait_timeout: float = Field(300.0, description="How long start-up waits for the SPE CRDs to be served.")
    reconcile_interval: float = Field(60.0, description="Period of the level-based re-reconcile timer.")
    children_resync_interval: float = Field(
        600.0, description="A permit's unchanged children are re-applied at least this often. Edits and deletions of "
                           "a child reach the permit at once through the watch on its kind; this safety net covers "
                           "only events a broken watch missed, so it need not run with every reconcile.")
    max_workers: int = Field(20, description="Kopf's limit of concurrently running sync handlers.")
    memory_trim_interval: float = Field(
        60.0, ge=0, description="Seconds between two returns of freed heap to the kernel (glibc malloc_trim; "
                                "0: never). Keeps the RSS near what is live after a burst at thousands of objects.")

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

    # --- identity provider (Keycloak): the permits' groups --------------------------------------
    # Unset URL or secret: identity sync is off (each permit's IdentitySynced condition says so).
    keycloak_url: str | None = Field(None, description="Base URL of Keycloak (e.g. https://keycloak.example); unset: no group sync.")
    keycloak_realm: str = Field("spe", description="Realm of the SPE's users and the permits' groups.")
    keycloak_client_id: str = Field("spe-operator", description="Confidential client whose service account manages the groups.")
    keycloak_client_secret: SecretStr | None = Field(
        None, description="That client's secret: from a Secret (SPE_KEYCLOAK_CLIENT_SECRET through secretKeyRef), "
                          "never a ConfigMap.")
    keycloak_hub_client_id: str = Field("spe-hub", description="The hub's client: sessions holding it are ended when a permit stops.")
    keycloak_timeout: float = Field(10.0, description="Timeout of each request to Keycloak (seconds).")
    keycloak_verify: bool = Field(True, description="Verify Keycloak's TLS certificate.")

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
    dataset_public_key: str | None = Field(
        None, description="The site's Ed25519 public key (PEM) every dataset's manifest must be signed with; "
                          "a workspace verifies each of its datasets against it before the notebook starts.")
    gpu_usage_max_age: float = Field(
        300.0, description="Seconds a GPU agent's status.gpuUsage counts for the GPU-idle stop (older: ignored).")

    # --- federation (Open Cluster Management; docs/federation.md) -------------------------------
    federation_role: Literal["none", "central", "node"] = Field(
        "none", description="none: a stand-alone SPE; central: mirrors DataPermits to the tier-3 nodes holding their "
                            "datasets (ManifestWorks) and keeps the nodes' catalogue; node: reports its datasets' "
                            "metadata and audit checkpoint, and suspends mirrored permits when central is out of reach.")
    federation_namespace: str = Field(
        "spe-federation", description="Namespace of the federation's ConfigMaps (heartbeat, catalogue).")
    federation_sync_interval: float = Field(
        10.0, gt=0, description="Seconds between two federation syncs (and central's heartbeats to the nodes).")
    federation_lease: float = Field(
        900.0, gt=0, description="Node: seconds without a heartbeat from central after which mirrored permits are "
                                 "suspended (fail closed); they resume when contact returns.")

    # --- datasets (the Dataset reconciler's ingest Jobs) ---------------------------------------
    dataset_reconciler: bool = Field(
        True, description="Run the Dataset reconciler. The test suite's session operator runs without it: the "
                          "workspace and node tests stand in for it with hand-made ready claims (kwok nodes run "
                          "no ingest Jobs); tests/dataset runs it.")
    ingest_image: str | None = Field(
        None, description="Image of spe-ingest (images/ingest), by digest: the ingest Jobs and the workspaces' dataset "
                          "verification (an init container) run it; unset: Datasets stay Pending and no workspace "
                          "mounts a dataset, each with a message saying so.")
    ingest_shards: int = Field(
        1, ge=1, le=64, description="Shards of an ingest: above 1, an Indexed Job of that many pods de-identifies "
                                    "the source in parallel, then one Job merges them (k, report, signed manifest).")
    ingest_workers: int = Field(2, ge=1, le=64, description="spe-ingest --workers in each ingest pod.")
    ingest_cpu: str = Field("2", description="CPU request and limit of each ingest pod.")
    ingest_memory: str = Field("2Gi", description="Memory request and limit of each ingest pod.")
    ingest_backoff_limit: int = Field(
        3, ge=0, le=20, description="Retries of an interrupted ingest pod (it resumes from its journal); a "
                                    "refusal (k below threshold) or a usage error is never retried.")
    ingest_node_selector: dict[str, str] = Field(default_factory=dict, description="nodeSelector of ingest pods.")
    ingest_tolerations: list[dict[str, Any]] = Field(default_factory=list, description="Tolerations of ingest pods.")
    dataset_progress_interval: float = Field(
        2.0, description="Seconds between progress reads (the ingest pod's last log line) while a Dataset ingests.")
    dataset_workers: int = Field(4, description="Datasets reconciled concurrently.")

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
    audit_checkpoint_every: int = Field(
        1000, ge=1, description="A signed checkpoint follows every this many audit records (and is published).")
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
            elif field.annotation in (dict[str, str], list[dict[str, Any]]):
                values[name] = json.loads(raw)  # e.g. SPE_INGEST_NODE_SELECTOR='{"disk": "ssd"}'
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def identity_configured(self) -> bool:
        """Whether the permits' groups are kept in an identity provider."""
        return bool(self.keycloak_url) and self.keycloak_client_secret is not None


class UnknownSettingsError(ValueError):
    """Keys in the settings that this operator does not read."""

    def __init__(self, unknown: dict[str, str | None]):
        self.unknown = unknown
        parts = [f"{key} (did you mean {hint}?)" if hint else key for key, hint in unknown.items()]
        super().__init__("the settings carry keys this operator does not read: " + ", ".join(parts)
                         + "; remove them or correct their names (the settings are the fields of "
                           "spe_operator.settings.SpeSettings, as SPE_<FIELD>)")
