"""The validating webhook's Kopf handlers: fetch what a rule needs, call the pure rule, refuse.

Also the start-up that gives the webhook its TLS and its configuration, and the local-mode
clean-up. The decisions themselves live in :mod:`.rules`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import kopf
from pydantic import ValidationError

from spe_api import DataPermit, Dataset, OutputReview, Tool, Workspace, permit_namespace
from spe_kube import ApiError, KubeClient, kind_for

from ..registry import REGISTRY
from ..settings import SpeSettings
from . import rules, tls
from .configuration import WEBHOOKS, build_webhook_configuration, with_ca_bundle

API = "spe.ehds.io/v1alpha1"
PERMITS = kind_for(API, "DataPermit")
DATASETS = kind_for(API, "Dataset")
WORKSPACES = kind_for(API, "Workspace")
TOOLS = kind_for(API, "Tool")
SECRETS = kind_for("v1", "Secret")
VWC = kind_for("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")

ADMISSION_POOL = 16  # connections of the webhooks' own API client

INVALID = 422    # the object is well-formed but breaks a rule that involves other objects
FORBIDDEN = 403  # the requester may not do this at all

log = logging.getLogger(__name__)


def _ids() -> dict[str, str]:
    return {hook.plural: hook.id for hook in WEBHOOKS}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(model, body, what: str):
    try:
        return model.from_manifest(body)
    except ValidationError as exc:  # the CRD schema normally prevents this
        raise kopf.AdmissionError(f"{what}: {exc}", code=INVALID) from exc


def _refuse(denial: rules.Denial | None, code: int = INVALID) -> None:
    if denial is not None:
        raise kopf.AdmissionError(denial.message, code=code)


def _kube(memo: kopf.Memo) -> KubeClient:
    """The webhooks' own API client, with its own connection pool: the API server waits for
    these answers (and refuses the object when they are late), so their lookups must not queue
    behind a reconciler's burst of requests on the shared client (measured: at 1,000 workspaces
    over 100 permits they did, and the API server refused hundreds of Workspace creates). The shared client where
    none was made (unit tests, a disabled webhook)."""
    return memo.get("admission_kube") or memo.kube


def _gateway_user(spe: SpeSettings) -> str:
    account = spe.egress_service_account
    if account.startswith("system:"):
        return account
    return rules.service_account_user(spe.operator_namespace, account)


# --- the three webhooks ---------------------------------------------------------------------

@kopf.on.validate(API.split("/")[0], "v1alpha1", "workspaces", id=_ids()["workspaces"],
                  operations=["CREATE", "UPDATE"], registry=REGISTRY)
async def validate_workspace(body: kopf.Body, old: kopf.Body | None, memo: kopf.Memo, **_: Any) -> None:
    kube = _kube(memo)
    ws = _parse(Workspace, body, "Workspace")
    previous = Workspace.from_manifest(old) if old else None
    # The three lookups at once: the create request of every Workspace waits for this webhook,
    # and the permit's namespace is almost always the conventional one (listed again if not).
    expected = permit_namespace(ws.spec.permit)
    permit_body, tool_body, listed = await asyncio.gather(
        kube.get_or_none(PERMITS, ws.spec.permit), kube.get_or_none(TOOLS, ws.spec.tool),
        kube.list(WORKSPACES, expected))
    permit = DataPermit.from_manifest(permit_body) if permit_body else None
    tool = Tool.from_manifest(tool_body) if tool_body else None
    available: list[str] = []
    if tool is None:
        available = [t.name for t in map(Tool.from_manifest, await kube.list(TOOLS)) if t.approved]
    others: list[Workspace] = []
    if permit is not None:
        if permit.status.namespace and permit.status.namespace != expected:
            expected = permit.status.namespace
            listed = await kube.list(WORKSPACES, expected)
        others = [Workspace.from_manifest(w) for w in listed]
    _refuse(rules.check_workspace(
        ws, old=previous, permit=permit, expected_namespace=expected, tool=tool,
        available_tools=available, others=others, now=_now()))


@kopf.on.validate(API.split("/")[0], "v1alpha1", "outputreviews", id=_ids()["outputreviews"],
                  operations=["CREATE"], registry=REGISTRY)
async def validate_output_review(body: kopf.Body, userinfo: dict, memo: kopf.Memo, **_: Any) -> None:
    spe: SpeSettings = memo.settings
    kube = _kube(memo)
    review = _parse(OutputReview, body, "OutputReview")
    username = (userinfo or {}).get("username", "")
    gateway = _gateway_user(spe)
    if username != gateway:
        _refuse(rules.check_output_review(review, username=username, gateway_username=gateway,
                                          workspace=None, permit=None, now=_now()), FORBIDDEN)
    ws_body = await kube.get_or_none(WORKSPACES, review.spec.workspace, review.namespace)
    workspace = Workspace.from_manifest(ws_body) if ws_body else None
    permit = None
    if workspace is not None:
        permit_body = await kube.get_or_none(PERMITS, workspace.spec.permit)
        permit = DataPermit.from_manifest(permit_body) if permit_body else None
    _refuse(rules.check_output_review(review, username=username, gateway_username=gateway,
                                      workspace=workspace, permit=permit, now=_now()))


@kopf.on.validate(API.split("/")[0], "v1alpha1", "datapermits", id=_ids()["datapermits"],
                  operations=["CREATE", "UPDATE"], registry=REGISTRY)
async def validate_data_permit(body: kopf.Body, old: kopf.Body | None, memo: kopf.Memo, **_: Any) -> None:
    kube = _kube(memo)
    permit = _parse(DataPermit, body, "DataPermit")
    previous = DataPermit.from_manifest(old) if old else None
    # Both lists at once (the API server gives this webhook 10 s; 300 permits created together
    # on the benchmark took longer one list after the other).
    datasets, permits = await asyncio.gather(kube.list(DATASETS),
                                             kube.list(PERMITS) if previous is None else asyncio.sleep(0, []))
    existing = [Dataset.from_manifest(d).name for d in datasets]
    if memo.settings.federation_role == "central":
        # At central, a permit may name the datasets its joined nodes hold (docs/federation.md).
        from ..federation.works import MANAGED_CLUSTER, held_datasets  # noqa: PLC0415 - central only

        try:
            existing += sorted(held_datasets(await kube.list(MANAGED_CLUSTER)))
        except ApiError as err:
            if not err.not_found:  # no OCM hub installed: no node holds anything
                raise
    others = [DataPermit.from_manifest(p) for p in permits]
    _refuse(rules.check_data_permit(permit, old=previous, existing_datasets=existing, other_permits=others))


# --- TLS and configuration ------------------------------------------------------------------

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
