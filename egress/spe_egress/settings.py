"""The gateway's configuration: one typed object built at start-up and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .release import DEFAULT_LINK_TTL_S


@dataclass(frozen=True)
class Settings:
    data_dir: Path                      # quarantine, check records, ledger (the gateway's volume)
    secret_file: Path                   # master secret (a mounted Kubernetes Secret)
    public_url: str = "http://127.0.0.1:8090"   # how browsers and notebooks reach the gateway
    host: str = "127.0.0.1"
    port: int = 8090
    hub_api_url: str = "http://127.0.0.1:8081/hub/api"
    oidc_issuer: str = ""               # e.g. http://127.0.0.1:8180/realms/spe (what browsers reach)
    oidc_internal_issuer: str = ""      # the same issuer as the gateway reaches it (default: oidc_issuer)
    oidc_client_id: str = "spe-egress"
    oidc_client_secret: str = ""
    oidc_roles_claim: str = "realm_roles"
    reviewer_role: str = "output-reviewer"
    audit_path: Path | None = None
    link_ttl_s: int = DEFAULT_LINK_TTL_S
    # the most one upload may carry; files stream to the quarantine, but the checks and the
    # bundle hold one request's files in memory, so keep it well under the container's memory
    max_request_bytes: int = 256 * 1024 ** 2
    cookie_secure: bool = False         # True behind TLS
    session_max_age_s: int = 8 * 3600
    sweep_interval_s: float = 300.0
    reap_interval_s: float = 10.0       # how soon a deleted request's files are purged
    store: str = "kube"                 # "kube" or "memory"
    kubeconfig: str | None = None

    @property
    def audit_file(self) -> Path:
        return self.audit_path or (self.data_dir / "audit.log")

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def records_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def ledger_dir(self) -> Path:
        return self.data_dir / "ledger"
