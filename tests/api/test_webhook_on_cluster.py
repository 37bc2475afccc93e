"""The webhook's in-cluster plumbing on the real API server: the TLS Secret, caBundle
injection into the installed configuration, and the local operator's own configuration."""

from __future__ import annotations

import base64
import logging
import secrets

import pytest

from spe_kube import KubeClient, load_kubeconfig
from spe_operator.admission import serving, tls
from spe_operator.admission.configuration import WEBHOOKS, build_webhook_configuration
from spe_operator.settings import SpeSettings

pytestmark = pytest.mark.api

log = logging.getLogger(__name__)


def inert(body: dict) -> dict:
    """The same configuration, matching a group nobody serves: safe on a shared cluster."""
    for hook in body["webhooks"]:
        for rule in hook["rules"]:
            rule["apiGroups"] = ["inert.test.spe.ehds.io"]
    return body


@pytest.fixture
async def kube(cluster):
    async with KubeClient(load_kubeconfig(cluster.kubeconfig)) as client:
        yield client


async def test_tls_secret_is_made_once_and_renewed_from_the_same_ca(kube, namespace):
    spe = SpeSettings(operator_namespace=namespace, webhook_service="spe-operator-webhook")
    first = await serving._service_tls(kube, spe)
    again = await serving._service_tls(kube, spe)
    assert again == first  # a restart (or a second replica) serves the same certificate
    secret = await kube.get(serving.SECRETS, tls.SECRET_NAME, namespace)
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    moved = SpeSettings(operator_namespace=namespace, webhook_service="spe-webhook-renamed")
    renewed = await serving._service_tls(kube, moved)
    assert renewed.ca_pem == first.ca_pem and renewed.cert_pem != first.cert_pem  # caBundle stays valid
    assert tls.needs_renewal(renewed, tls.service_hosts("spe-webhook-renamed", namespace)) == (False, False)


async def test_ca_bundle_is_injected_into_the_installed_configuration(kube):
    name = f"spe-admission-inject-{secrets.token_hex(3)}"
    body = inert(build_webhook_configuration(service=("spe-system", "spe-operator-webhook"), name=name))
    await kube.create(body)
    try:
        await serving._inject_ca_bundle(kube, name, b"-----CA-----", log)
        live = await kube.get(serving.VWC, name)
        bundles = {h["name"]: base64.b64decode(h["clientConfig"]["caBundle"]) for h in live["webhooks"]}
        assert bundles == {w.name: b"-----CA-----" for w in WEBHOOKS}
        assert all(h["failurePolicy"] == "Fail" for h in live["webhooks"])
        version = live["metadata"]["resourceVersion"]
        await serving._inject_ca_bundle(kube, name, b"-----CA-----", log)  # unchanged: no write
        assert (await kube.get(serving.VWC, name))["metadata"]["resourceVersion"] == version
    finally:
        await kube.delete(serving.VWC, name)


async def test_missing_configuration_is_reported_not_created(kube, caplog):
    name = f"spe-admission-absent-{secrets.token_hex(3)}"
    await serving._inject_ca_bundle(kube, name, b"CA", log)
    assert await kube.get_or_none(serving.VWC, name) is None
    assert "install manifests/base/webhook.yaml" in caplog.text


async def test_running_operator_has_its_own_local_configuration(operator, kube):
    name = operator.webhook_configuration_name
    live = await kube.get(serving.VWC, name)
    assert live["metadata"]["labels"][serving.LOCAL_MODE_LABEL] == "local"
    for hook in live["webhooks"]:
        assert hook["clientConfig"]["url"].startswith(f"https://127.0.0.1:{operator.webhook_port}/")
        assert hook["failurePolicy"] == "Fail" and hook["clientConfig"]["caBundle"]
