"""Loading API-server credentials from a kubeconfig file or the in-cluster service account."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class KubeConfig:
    """Where the API server is and how to authenticate to it."""

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    insecure: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def bearer_token(self) -> str | None:
        # A projected service-account token rotates: read it on every use.
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        return self.token


def _materialise(data_b64: str | None, path: str | None, base: Path, suffix: str) -> str | None:
    """Return a file path for inline (``*-data``) or file-referenced kubeconfig material."""
    if data_b64:
        fd, name = tempfile.mkstemp(prefix="spe-kube-", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(data_b64))
        return name
    if path:
        p = Path(path)
        return str(p if p.is_absolute() else base / p)
    return None


def load_kubeconfig(path: str | os.PathLike | None = None, context: str | None = None) -> KubeConfig:
    """Load credentials: an explicit path, else ``$KUBECONFIG``, else in-cluster, else ``~/.kube/config``."""
    if path is None:
        env = os.environ.get("KUBECONFIG")
        if env:
            path = env.split(os.pathsep)[0]
        elif (IN_CLUSTER_DIR / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if ":" in host:
                host = f"[{host}]"
            return KubeConfig(
                server=f"https://{host}:{port}",
                ca_file=str(IN_CLUSTER_DIR / "ca.crt"),
                token_file=str(IN_CLUSTER_DIR / "token"),
            )
        else:
            path = Path.home() / ".kube" / "config"
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) or {}
    ctx_name = context or doc.get("current-context")
    contexts = {c["name"]: c["context"] for c in doc.get("contexts", [])}
    if ctx_name not in contexts:
        raise ValueError(f"kubeconfig {path}: context {ctx_name!r} not found")
    ctx = contexts[ctx_name]
    cluster = {c["name"]: c["cluster"] for c in doc.get("clusters", [])}[ctx["cluster"]]
    user = {u["name"]: u.get("user") or {} for u in doc.get("users", [])}.get(ctx.get("user"), {})
    base = path.parent
    return KubeConfig(
        server=cluster["server"].rstrip("/"),
        ca_file=_materialise(cluster.get("certificate-authority-data"), cluster.get("certificate-authority"), base, ".crt"),
        cert_file=_materialise(user.get("client-certificate-data"), user.get("client-certificate"), base, ".crt"),
        key_file=_materialise(user.get("client-key-data"), user.get("client-key"), base, ".key"),
        token=user.get("token"),
        token_file=user.get("tokenFile"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )
