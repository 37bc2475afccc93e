"""Serving the validating webhooks: the server's certificate (a Secret shared by the replicas,
or a local one), the ValidatingWebhookConfiguration's CA bundle (in-cluster) or the whole
configuration (local mode: tests, ``make demo``), and its removal when a local operator stops.

The rules themselves live in ``handlers`` (what each webhook checks) and ``rules`` (pure)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf

from spe_kube import ApiError, KubeClient, kind_for

from ..registry import REGISTRY
from ..settings import SpeSettings
from . import tls
from .configuration import build_webhook_configuration, with_ca_bundle

SECRETS = kind_for("v1", "Secret")
VWC = kind_for("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
ADMISSION_POOL = 16  # connections of the webhooks' own API client (see handlers._kube)


class _NoServer:
    """Stands in when the webhook is disabled, so Kopf does not refuse to start."""

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield  # pragma: no cover


async def _service_tls(kube: KubeClient, spe: SpeSettings) -> tls.TlsMaterial:
    """Load the TLS Secret, creating or renewing it; every replica ends up with the same CA."""
    hosts = tls.service_hosts(spe.webhook_service or "", spe.operator_namespace)
    for _attempt in range(5):
        secret = await kube.get_or_none(SECRETS, tls.SECRET_NAME, spe.operator_namespace)
        if secret is not None:
            material = tls.TlsMaterial.from_secret_data(secret.get("data", {}))
            cert_due, ca_due = tls.needs_renewal(material, hosts)
            if not cert_due:
                return material
            material = tls.issue(hosts, ca=None if ca_due else material)
            secret["data"] = material.to_secret_data()
            try:
                await kube.request("PUT", SECRETS.path(spe.operator_namespace, tls.SECRET_NAME), body=secret)
                return material
            except ApiError as exc:
                if not exc.conflict:
                    raise
                continue  # another replica renewed it: read theirs
        material = tls.issue(hosts)
        try:
            await kube.create({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": tls.SECRET_NAME, "namespace": spe.operator_namespace,
                             "labels": {"app.kubernetes.io/name": "spe-operator",
                                        "app.kubernetes.io/component": "admission"}},
                "data": material.to_secret_data(),
            })
            return material
        except ApiError as exc:
            if not exc.conflict:
                raise
    raise RuntimeError(f"could not settle the webhook TLS Secret {spe.operator_namespace}/{tls.SECRET_NAME}")


async def _inject_ca_bundle(kube: KubeClient, name: str, ca_pem: bytes, logger: Any) -> None:
    for _attempt in range(5):
        live = await kube.get_or_none(VWC, name)
        if live is None:
            logger.error(f"ValidatingWebhookConfiguration {name} is missing: install manifests/base/webhook.yaml; "
                         f"until then the SPE kinds are not validated by the webhook")
            return
        updated = with_ca_bundle(live, ca_pem)
        if updated == live:
            return
        try:
            await kube.request("PUT", VWC.path(None, name), body=updated)
            return
        except ApiError as exc:
            if not exc.conflict:
                raise


LOCAL_MODE_LABEL = "spe.ehds.io/webhook-mode"


def _local_host(spe: SpeSettings) -> str:
    return spe.webhook_host if spe.webhook_host not in ("0.0.0.0", "::") else "127.0.0.1"


def _local_url(spe: SpeSettings) -> str:
    return f"https://{_local_host(spe)}:{spe.webhook_port}"


@kopf.on.startup(registry=REGISTRY)
async def start_admission(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Give the webhook server its certificate and the API server the matching configuration."""
    spe: SpeSettings = memo.settings
    kube: KubeClient = memo.kube
    settings.admission.managed = None  # the configuration is ours (see configuration.py)
    if not spe.webhook_enabled:
        settings.admission.server = _NoServer()
        return
    if spe.webhook_cert_dir:
        material = tls.TlsMaterial.from_dir(spe.webhook_cert_dir)
    elif spe.webhook_service:
        material = await _service_tls(kube, spe)
    else:
        host = _local_host(spe)
        material = tls.issue([host, "localhost"] if host != "localhost" else ["localhost"])
    certfile, keyfile = material.write()
    memo.admission_kube = KubeClient(kube.config, timeout=spe.request_timeout, pool_size=ADMISSION_POOL)
    settings.admission.server = kopf.WebhookServer(
        addr=spe.webhook_host, port=spe.webhook_port, certfile=str(certfile), pkeyfile=str(keyfile),
        cadata=material.ca_pem)
    if spe.webhook_service:
        await _inject_ca_bundle(kube, spe.webhook_configuration_name, material.ca_pem, logger)
        logger.info("admission webhook served for Service %s", spe.webhook_service)
        return
    # Local mode (tests, `make demo`): the API server dials this process on loopback. Test
    # sessions sharing a cluster each set their own webhook_configuration_name (and remove those
    # of sessions that are gone), so one ending does not unhook another.
    name = spe.webhook_configuration_name
    configuration = build_webhook_configuration(url=_local_url(spe), ca_bundle=material.ca_pem, name=name,
                                                labels={LOCAL_MODE_LABEL: "local"})
    await kube.apply(configuration, field_manager="spe-operator-admission")
    memo["admission_configuration"] = name
    logger.info("admission webhook at %s (configuration %s)", _local_url(spe), name)


@kopf.on.cleanup(registry=REGISTRY)
async def stop_admission(memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Local mode only: remove this operator's own configuration, so a stopped local operator
    does not leave the API server refusing every SPE object. (In-cluster, the configuration
    stays: fail-closed while the operator is away.)"""
    own = memo.get("admission_kube")
    if own is not None:
        await own.close()
    name = memo.get("admission_configuration")
    kube: KubeClient | None = memo.get("kube")
    if not name or kube is None:
        return
    try:
        await kube.delete(VWC, name)
    except (ApiError, OSError) as exc:  # best effort: the test fixture removes those of ended sessions
        logger.warning("could not remove the local webhook configuration %s: %s", name, exc)
    finally:
        await kube.close()  # the runtime may have closed it already; this call may have reopened it
