"""The webhook's TLS: a private CA and a serving certificate, made and renewed by the operator.

The API server only calls a webhook over HTTPS and verifies it against the configuration's
``caBundle``. The operator keeps a small private CA (ECDSA P-256) and a serving certificate in
the Secret ``spe-webhook-tls`` of its own namespace, so every restart and replica serves a
certificate the installed ``caBundle`` already trusts; the serving certificate is re-issued from
the same CA when it nears expiry, the CA itself only when *it* nears expiry (then the operator
re-injects the new ``caBundle``). For tests and local runs (the API server dials 127.0.0.1) the
same code issues an in-memory pair for the loopback address and nothing is stored.

If the cluster runs cert-manager instead, mount its Secret and set ``SPE_WEBHOOK_CERT_DIR``
(``tls.crt``, ``tls.key``, ``ca.crt``); the operator then only serves and injects.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=5 * 365)
SERVING_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
SECRET_NAME = "spe-webhook-tls"


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of the serving pair and of the CA that signed it."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    ca_key_pem: bytes | None = None

    def write(self, directory: str | os.PathLike | None = None) -> tuple[Path, Path]:
        """Write tls.crt/tls.key (0600) for the web server; returns their paths."""
        base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="spe-webhook-"))
        base.mkdir(parents=True, exist_ok=True)
        cert, key = base / "tls.crt", base / "tls.key"
        cert.write_bytes(self.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.key_pem)
        return cert, key

    def to_secret_data(self) -> dict[str, str]:
        data = {"tls.crt": self.cert_pem, "tls.key": self.key_pem, "ca.crt": self.ca_pem}
        if self.ca_key_pem:
            data["ca.key"] = self.ca_key_pem
        return {k: base64.b64encode(v).decode("ascii") for k, v in data.items()}

    @classmethod
    def from_secret_data(cls, data: dict[str, str]) -> "TlsMaterial":
        raw = {k: base64.b64decode(v) for k, v in (data or {}).items()}
        return cls(raw["tls.crt"], raw["tls.key"], raw["ca.crt"], raw.get("ca.key"))

    @classmethod
    def from_dir(cls, directory: str | os.PathLike) -> "TlsMaterial":
        base = Path(directory)
        ca = base / "ca.crt"
        cert = (base / "tls.crt").read_bytes()
        return cls(cert, (base / "tls.key").read_bytes(), ca.read_bytes() if ca.exists() else cert)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(hosts: list[str], *, now: datetime | None = None, ca: TlsMaterial | None = None) -> TlsMaterial:
    """A serving certificate for ``hosts`` (DNS names or IP addresses), signed by ``ca`` (its
    ``ca_pem``/``ca_key_pem``), or by a new CA when ``ca`` is None."""
    now = now or datetime.now(timezone.utc)
    if ca is None or ca.ca_key_pem is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spe-operator webhook CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        ca_pem, ca_key_pem = ca_cert.public_bytes(serialization.Encoding.PEM), _key_pem(ca_key)
    else:
        ca_pem, ca_key_pem = ca.ca_pem, ca.ca_key_pem
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)  # type: ignore[assignment]
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))  # CN <= 64
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + SERVING_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return TlsMaterial(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), ca_pem, ca_key_pem)


def needs_renewal(material: TlsMaterial, hosts: list[str], *, now: datetime | None = None) -> tuple[bool, bool]:
    """(serving certificate must be re-issued, CA must be replaced)."""
    now = now or datetime.now(timezone.utc)
    ca_cert = x509.load_pem_x509_certificate(material.ca_pem)
    cert = x509.load_pem_x509_certificate(material.cert_pem)
    ca_due = ca_cert.not_valid_after_utc - now < RENEW_BEFORE or material.ca_key_pem is None
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = {str(v) for v in sans.get_values_for_type(x509.DNSName)} | {
            str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        covered = set()
    cert_due = ca_due or cert.not_valid_after_utc - now < RENEW_BEFORE or not set(hosts) <= covered
    return cert_due, ca_due


def service_hosts(service: str, namespace: str) -> list[str]:
    """The names the API server may use for a Service-backed webhook."""
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local", service,
            f"{service}.{namespace}"]
