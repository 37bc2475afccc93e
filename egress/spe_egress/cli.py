"""``spe-egress serve``: run the gateway. Configuration comes from flags, each with an
environment variable as its default (read here, at start-up, never at import)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .settings import Settings


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spe-egress", description="The SPE egress-review gateway.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP service (researcher API, reviewer page, release)")
    s.add_argument("--host", default=_env("SPE_EGRESS_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(_env("SPE_EGRESS_PORT", "8090")))
    s.add_argument("--public-url", default=_env("SPE_EGRESS_PUBLIC_URL"),
                   help="URL browsers and notebooks use to reach the gateway (default http://HOST:PORT)")
    s.add_argument("--data-dir", default=_env("SPE_EGRESS_DATA_DIR", "/var/lib/spe-egress"),
                   help="the gateway's volume: quarantine, check records, ledger, audit log")
    s.add_argument("--secret-file", default=_env("SPE_EGRESS_SECRET_FILE", "/etc/spe-egress/secret/key"),
                   help="master secret (mounted Kubernetes Secret), 32+ bytes raw, hex or base64")
    s.add_argument("--hub-api-url", default=_env("SPE_EGRESS_HUB_API_URL", "http://127.0.0.1:8081/hub/api"))
    s.add_argument("--oidc-issuer", default=_env("SPE_EGRESS_OIDC_ISSUER", ""),
                   help="the reviewers' identity provider (Keycloak realm URL) as browsers reach it")
    s.add_argument("--oidc-internal-issuer", default=_env("SPE_EGRESS_OIDC_INTERNAL_ISSUER", ""),
                   help="the same issuer as the gateway reaches it, e.g. an in-cluster Service "
                        "(discovery, code exchange, keys; default --oidc-issuer)")
    s.add_argument("--oidc-client-id", default=_env("SPE_EGRESS_OIDC_CLIENT_ID", "spe-egress"))
    s.add_argument("--oidc-client-secret-file", default=_env("SPE_EGRESS_OIDC_CLIENT_SECRET_FILE"))
    s.add_argument("--reviewer-role", default=_env("SPE_EGRESS_REVIEWER_ROLE", "output-reviewer"))
    s.add_argument("--audit-log", default=_env("SPE_EGRESS_AUDIT_LOG"))
    s.add_argument("--link-ttl", type=int, default=int(_env("SPE_EGRESS_LINK_TTL_S", str(7 * 86400))),
                   help="seconds a release link stays valid (default 7 days)")
    s.add_argument("--max-request-bytes", type=int,
                   default=int(_env("SPE_EGRESS_MAX_REQUEST_BYTES", str(256 * 1024 ** 2))),
                   help="the most one upload may carry (default 256 MiB; keep it well under the container's memory)")
    s.add_argument("--store", choices=("kube", "memory"), default=_env("SPE_EGRESS_STORE", "kube"))
    s.add_argument("--kubeconfig", default=_env("KUBECONFIG"))
    s.add_argument("--cookie-secure", action="store_true", default=_env("SPE_EGRESS_COOKIE_SECURE") == "1")
    s.add_argument("--log-level", default=_env("SPE_EGRESS_LOG_LEVEL", "info"))
    return p


def settings_from_args(a: argparse.Namespace) -> Settings:
    secret = ""
    if a.oidc_client_secret_file:
        secret = Path(a.oidc_client_secret_file).read_text().strip()
    return Settings(
        data_dir=Path(a.data_dir), secret_file=Path(a.secret_file),
        public_url=a.public_url or f"http://{a.host}:{a.port}", host=a.host, port=a.port,
        hub_api_url=a.hub_api_url, oidc_issuer=a.oidc_issuer, oidc_internal_issuer=a.oidc_internal_issuer,
        oidc_client_id=a.oidc_client_id,
        oidc_client_secret=secret, reviewer_role=a.reviewer_role,
        audit_path=Path(a.audit_log) if a.audit_log else None, link_ttl_s=a.link_ttl,
        cookie_secure=a.cookie_secure, store=a.store, kubeconfig=a.kubeconfig,
        max_request_bytes=a.max_request_bytes)


def make_store(settings: Settings):
    if settings.store == "memory":
        from .store import MemoryStore
        return MemoryStore()
    from .kube_store import KubeStore
    return KubeStore.from_kubeconfig(settings.kubeconfig, settings.records_dir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        import uvicorn

        from .app import create_app
        settings = settings_from_args(args)
        try:
            app = create_app(settings, make_store(settings))
        except (OSError, ValueError) as e:
            print(f"spe-egress: {e}", file=sys.stderr)
            return 2
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level.lower(),
                    proxy_headers=False, server_header=False)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
