"""The local control plane's PKI: one CA, the API server's serving certificate, a client
certificate per component, and the service-account signing key pair.

ECDSA P-256 throughout: every component accepts it and key generation is instant.
Files are created once and reused by later `spe-dev up` runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=3650)

# Client identities: file stem -> (CommonName = user, Organization = group or None).
CLIENTS = {
    "admin": ("spe-dev:admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    # kwok plays the kubelet of every fake node (node and pod status, leases, pod deletion);
    # in this throw-away cluster it gets cluster-admin rights through system:masters.
    "kwok": ("spe-dev:kwok", "system:masters"),
    # The API server's own client certificate towards kubelets (kwok's server, the real node).
    "apiserver-kubelet-client": ("spe-dev:apiserver-kubelet-client", "system:masters"),
    # The real node: its kubelet (Node authorizer + NodeRestriction apply), kube-proxy (the
    # bootstrap role system:node-proxier), and kube-router, which reads pods, namespaces, nodes
    # and NetworkPolicies cluster-wide (admin in this throw-away cluster, like kwok).
    "kubelet-spe-node-1": ("system:node:spe-node-1", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),
    "kube-router": ("spe-dev:kube-router", "system:masters"),
}

FRONT_PROXY_CLIENT = "front-proxy-client"

SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def cert(self, stem: str) -> Path:
        return self.dir / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.dir / f"{stem}.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return serialization.load_pem_private_key(path.read_bytes(), password=None)  # type: ignore[return-value]


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _leaf(pki: Pki, stem: str, subject: x509.Name, *, server: bool, sans: list | None = None,
          ca: str = "ca") -> None:
    ca_key = _load_key(pki.key(ca))
    ca_cert = x509.load_pem_x509_certificate(pki.cert(ca).read_bytes())
    key = _new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(pki.key(stem), key)
    _write_cert(pki.cert(stem), cert)


def _new_ca(pki: Pki, stem: str, cn: str) -> None:
    key = _new_key()
    name = _name(cn)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.key(stem), key)
    _write_cert(pki.cert(stem), cert)
    # A new CA invalidates the leaves an old one issued: drop them, ensure_pki re-issues them.
    for leaf in pki.dir.glob("*.crt"):
        issued_here = (leaf.stem == FRONT_PROXY_CLIENT) == (stem == "front-proxy-ca")
        if leaf.stem not in ("ca", "front-proxy-ca") and issued_here:
            leaf.unlink()


def _covers(cert_path: Path, ips: tuple[str, ...]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(ips) <= have


def ensure_pki(directory: Path, service_ip: str, extra_ips: tuple[str, ...] = ()) -> Pki:
    """Create whatever of the PKI is missing under ``directory``; return its paths.

    The API server's certificate covers 127.0.0.1, the `kubernetes` Service's ClusterIP and
    ``extra_ips`` (the relay pods dial); one that lacks any of them is issued anew."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    pki = Pki(directory)
    for ca, cn in (("ca", "spe-dev-ca"), ("front-proxy-ca", "spe-dev-front-proxy-ca")):
        if not (pki.cert(ca).exists() and pki.key(ca).exists()):
            _new_ca(pki, ca, cn)

    ips = ("127.0.0.1", service_ip, *extra_ips)
    if not pki.cert("apiserver").exists() or not _covers(pki.cert("apiserver"), ips):
        sans = [x509.DNSName(d) for d in SERVING_DNS]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        _leaf(pki, "apiserver", _name("kube-apiserver"), server=True, sans=sans)

    for stem, (cn, org) in CLIENTS.items():
        if not pki.cert(stem).exists():
            _leaf(pki, stem, _name(cn, org), server=False)
    # The API server's identity towards aggregated API servers (request-header authentication);
    # the controller manager and scheduler read this CA to trust such proxied requests.
    if not pki.cert(FRONT_PROXY_CLIENT).exists():
        _leaf(pki, FRONT_PROXY_CLIENT, _name(FRONT_PROXY_CLIENT), server=False, ca="front-proxy-ca")

    if not (pki.sa_key.exists() and pki.sa_pub.exists()):
        key = _new_key()
        _write_key(pki.sa_key, key)
        pki.sa_pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pki
