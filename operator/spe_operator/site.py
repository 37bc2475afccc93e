"""``spe-operator site DIR``: the installer's own directory for one installation.

It holds the settings file (a copy of the chosen overlay's settings.env: the one file the
installer edits), the Secrets the install needs (generated here, never typed by hand: the audit
trail's Ed25519 signing key, the egress gateway's key, its OIDC client secret) and a
kustomization that applies the overlay with both. Then: ``kubectl apply -k DIR``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import yaml

from spe_audit.checkpoint import generate_keypair

OVERLAYS = ("node", "central")
SECRETS = {  # Secret name -> {key in the Secret: file under secrets/}
    "spe-audit-signing-key": {"key.pem": "audit-signing-key.pem"},
    "spe-egress-key": {"key": "egress-key"},
    "spe-egress-oidc": {"client-secret": "egress-oidc-client-secret"},
    "spe-hub-keys": {"crypt-key": "hub-crypt-key", "proxy-token": "hub-proxy-token"},
    "spe-hub-oidc": {"client-secret": "hub-oidc-client-secret"},
}
IMAGES = ("operator", "egress", "hub")
PLACEHOLDER_REGISTRY = "example.invalid/spe"


def kustomization(overlay_path: str, images: dict[str, str]) -> dict:
    """The site's kustomization (pure). ``images``: name -> ``repo@sha256:digest`` (or ``repo:tag``)."""
    doc: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [overlay_path],
        "components": [str(Path(overlay_path) / ".." / ".." / "components" / "settings")],
        "configMapGenerator": [{"name": "spe-operator-config", "namespace": "spe-system", "behavior": "merge",
                                "envs": ["settings.env"]}],
        "secretGenerator": [{"name": name, "namespace": "spe-system", "type": "Opaque",
                             "options": {"disableNameSuffixHash": True},
                             "files": [f"{key}=secrets/{filename}" for key, filename in files.items()]}
                            for name, files in SECRETS.items()],
    }
    entries = []
    for name, ref in sorted(images.items()):
        entry = {"name": f"{PLACEHOLDER_REGISTRY}/{name}"}
        if "@" in ref:
            entry["newName"], entry["digest"] = ref.split("@", 1)
        elif ":" in ref.rsplit("/", 1)[-1]:
            entry["newName"], entry["newTag"] = ref.rsplit(":", 1)
        else:
            entry["newName"] = ref
        entries.append(entry)
    if entries:
        doc["images"] = entries
    return doc


HEADER = """# This installation of the SPE (`spe-operator site`). Edit settings.env only; then
#   kubectl apply --server-side -k {dir}
# secrets/ holds generated keys (never commit it); keep the audit public key
# (secrets/audit-signing-key.pub.pem) for `spe-audit verify --public-key`.
"""


def write_secrets(directory: Path, *, oidc_client_secret: str | None = None,
                  hub_oidc_client_secret: str | None = None) -> list[Path]:
    """Generate the Secrets' files that do not exist yet (an existing key is never replaced).
    The OIDC client secrets are the IdP's: given, or random (then set them in the IdP)."""
    out = directory / "secrets"
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    private, public = out / "audit-signing-key.pem", out / "audit-signing-key.pub.pem"
    if not private.exists():
        generate_keypair(str(private), str(public))
        written.append(private)
    for filename, value in (("egress-key", secrets.token_hex(32)),
                            ("egress-oidc-client-secret", oidc_client_secret or secrets.token_urlsafe(32)),
                            ("hub-crypt-key", secrets.token_hex(32)), ("hub-proxy-token", secrets.token_hex(32)),
                            ("hub-oidc-client-secret", hub_oidc_client_secret or secrets.token_urlsafe(32))):
        path = out / filename
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
            written.append(path)
    return written


def create_site(directory: Path, overlay_dir: Path, *, images: dict[str, str] | None = None,
                oidc_client_secret: str | None = None, hub_oidc_client_secret: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    settings = directory / "settings.env"
    if not settings.exists():
        shutil.copyfile(overlay_dir / "settings.env", settings)
    write_secrets(directory, oidc_client_secret=oidc_client_secret, hub_oidc_client_secret=hub_oidc_client_secret)
    overlay_path = os.path.relpath(overlay_dir.resolve(), directory.resolve())
    path = directory / "kustomization.yaml"
    doc = kustomization(overlay_path, images or {})
    if path.exists():  # a second run: keep the site's own lines (patches) and images not given now
        old = yaml.safe_load(path.read_text()) or {}
        given = {entry["name"] for entry in doc.get("images", [])}
        kept = [entry for entry in old.get("images", []) if entry.get("name") not in given]
        if kept or doc.get("images"):
            doc["images"] = sorted(kept + doc.get("images", []), key=lambda e: e["name"])
        doc.update({k: v for k, v in old.items() if k not in doc})
    path.write_text(HEADER.format(dir=directory) + yaml.safe_dump(doc, sort_keys=False))
    return directory
