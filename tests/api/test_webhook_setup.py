"""The webhook's configuration manifest and TLS material, without a cluster."""

from __future__ import annotations

import asyncio
import base64
import ssl
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from cryptography import x509

from spe_operator.admission import tls
from spe_operator.admission.configuration import (WEBHOOKS, build_webhook_configuration, render_manifest,
                                                  with_ca_bundle)
from spe_operator.registry import REGISTRY

from .helpers import ROOT

pytestmark = pytest.mark.api


def test_manifest_matches_the_builder():
    on_disk = (ROOT / "manifests" / "base" / "webhook.yaml").read_text()
    assert on_disk == render_manifest(), "run `python -m spe_operator.admission.configuration`"


def test_configuration_is_fail_closed_and_scoped_to_spe_kinds():
    body = yaml.safe_load(render_manifest())
    assert {h["name"] for h in body["webhooks"]} == {w.name for w in WEBHOOKS}
    for hook in body["webhooks"]:
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert [r["apiGroups"] for r in hook["rules"]] == [["spe.ehds.io"]]
        assert hook["clientConfig"]["service"]["path"] == "/" + hook["name"].split(".")[0]
        assert "caBundle" not in hook["clientConfig"]
        if "UPDATE" in hook["rules"][0]["operations"]:
            assert "object.spec != oldObject.spec" in hook["matchConditions"][0]["expression"]


def test_handler_ids_match_the_paths():
    import spe_operator.handlers  # noqa: F401 - registers the handlers

    ids = {h.id for h in REGISTRY._webhooks.get_all_handlers()}
    assert {w.id for w in WEBHOOKS} <= ids


def test_url_mode_and_ca_injection():
    body = build_webhook_configuration(url="https://127.0.0.1:9443/", ca_bundle=b"PEM")
    assert body["webhooks"][0]["clientConfig"] == {"url": "https://127.0.0.1:9443/validate-datapermit",
                                                   "caBundle": base64.b64encode(b"PEM").decode()}
    with pytest.raises(ValueError):
        build_webhook_configuration()
    live = yaml.safe_load(render_manifest())
    live["webhooks"].append({"name": "someone-else.example.com", "clientConfig": {"url": "https://x"}})
    injected = with_ca_bundle(live, b"CA")
    assert [h["clientConfig"].get("caBundle") for h in injected["webhooks"]] == ["Q0E="] * 3 + [None]
    assert "caBundle" not in live["webhooks"][0]["clientConfig"]  # the input is not modified


def test_issued_certificate_chains_to_its_ca_and_names_the_hosts():
    hosts = tls.service_hosts("spe-operator-webhook", "spe-system")
    material = tls.issue(hosts)
    cert = x509.load_pem_x509_certificate(material.cert_pem)
    ca = x509.load_pem_x509_certificate(material.ca_pem)
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "spe-operator-webhook.spe-system.svc" in sans.get_values_for_type(x509.DNSName)
    assert tls.needs_renewal(material, hosts) == (False, False)
    assert tls.needs_renewal(material, hosts + ["other.svc"]) == (True, False)
    later = datetime.now(timezone.utc) + tls.SERVING_VALIDITY - timedelta(days=1)
    assert tls.needs_renewal(material, hosts, now=later) == (True, False)
    renewed = tls.issue(hosts, ca=material)
    assert renewed.ca_pem == material.ca_pem and renewed.cert_pem != material.cert_pem
    assert tls.TlsMaterial.from_secret_data(renewed.to_secret_data()) == renewed


async def test_tls_handshake_on_loopback(tmp_path):
    material = tls.issue(["127.0.0.1", "localhost"])
    certfile, keyfile = material.write(tmp_path)
    assert oct(keyfile.stat().st_mode & 0o777) == "0o600"
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certfile, keyfile)

    async def handle(reader, writer):
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cadata=material.ca_pem.decode())
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        assert await reader.read() == b"ok"
        writer.close()
