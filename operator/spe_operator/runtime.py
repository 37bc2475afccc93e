"""Start-up of the Kopf operator with the project's own framework settings."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf

from spe_kube import ApiError, KubeClient, load_kubeconfig

from .admission import configure_admission
from .audit import AuditHook
from .registry import REGISTRY
from .settings import SpeSettings

GROUP = "spe.ehds.io"
FINALIZER = f"{GROUP}/finalizer"
LAST_HANDLED_KEY = "last-handled-configuration"

log = logging.getLogger(__name__)


def configure_kopf(settings: kopf.OperatorSettings, spe: SpeSettings) -> None:
    """Apply the project's framework settings: storage prefixes, finalizer name, timeouts."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key=LAST_HANDLED_KEY)
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = spe.watch_server_timeout
    settings.watching.client_timeout = spe.watch_client_timeout
    settings.watching.connect_timeout = spe.connect_timeout
    settings.networking.request_timeout = spe.request_timeout
    settings.networking.connect_timeout = spe.connect_timeout
    settings.execution.max_workers = spe.max_workers
    settings.posting.level = logging.INFO
    settings.peering.standalone = spe.standalone
    settings.peering.name = spe.peering_name
    settings.peering.clusterwide = True
    # Admission is wired by the admission module (it knows the webhook's shape).
    if spe.webhook_enabled:
        configure_admission(settings, spe)


@kopf.on.login(registry=REGISTRY)
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Authenticate Kopf with the same credentials as the project's own client."""
    cfg = memo.kube.config
    return kopf.ConnectionInfo(
        server=cfg.server,
        ca_path=cfg.ca_file,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        token=cfg.bearer_token(),
        insecure=cfg.insecure,
        scheme="Bearer" if cfg.bearer_token() else None,
    )


@kopf.on.startup(registry=REGISTRY)
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure_kopf(settings, memo.settings)


@kopf.on.cleanup(registry=REGISTRY)
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    federation = memo.get("federation_task")  # its loop uses the client: it stops first
    if federation is not None:
        federation.cancel()
        await asyncio.gather(federation, return_exceptions=True)
    audit = memo.get("audit")  # first: its final checkpoint is published through the client
    if audit is not None:
        await audit.aclose()
    kube = memo.get("kube")
    if kube is not None:
        await kube.close()


def build_memo(spe: SpeSettings) -> kopf.Memo:
    """The state handed to every handler: the typed settings, one shared API client, the audit
    trail (signed checkpoints published to a ConfigMap, records exported to OpenTelemetry, as
    the settings say). Called inside the operator's event loop."""
    kube = KubeClient(load_kubeconfig(spe.kubeconfig), timeout=spe.request_timeout)
    publisher = None
    if spe.audit_log_path and spe.audit_checkpoint_configmap:
        from spe_audit.publish import ConfigMapPublisher  # noqa: PLC0415 - only with an audit trail

        publisher = ConfigMapPublisher(kube, namespace=spe.operator_namespace, name=spe.audit_checkpoint_configmap)
    audit = AuditHook.from_settings(spe.audit_log_path, spe.audit_signing_key, otlp_endpoint=spe.otlp_endpoint,
                                    publisher=publisher, checkpoint_every=spe.audit_checkpoint_every)
    return kopf.Memo(settings=spe, kube=kube, audit=audit)


async def wait_for_crds(kube: KubeClient, *, timeout: float, interval: float = 0.5) -> None:
    """Wait until the API server's discovery serves every SPE kind.

    Kopf reads discovery once at start-up and afterwards only reacts to CRD *changes*: started
    while the CRDs are still being installed (``kubectl apply -k`` installs them beside the
    operator's Deployment), it would miss a kind for good and answer that kind's admission
    requests with 404 -- which the fail-closed webhook turns into refusing every such object.
    """
    from spe_api import KINDS  # noqa: PLC0415 - the models are only needed here

    wanted = {kind.PLURAL for kind in KINDS}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    missing = wanted
    logged = False
    while True:
        try:
            listing = await kube.request("GET", f"/apis/{GROUP}/v1alpha1")
            served = {r["name"] for r in listing.get("resources", [])}
            missing = wanted - served
        except ApiError as exc:
            if not exc.not_found:
                raise
        if not missing:
            return
        if loop.time() > deadline:
            raise RuntimeError(f"the CRDs of {GROUP} are not served ({', '.join(sorted(missing))} missing) "
                               f"after {timeout:.0f}s: apply crds/ (or the manifests) first")
        if not logged:
            log.info("waiting for the API server to serve %s", ", ".join(sorted(missing)))
            logged = True
        await asyncio.sleep(interval)


async def run(spe: SpeSettings, *, stop_flag: Any = None, ready_flag: Any = None) -> None:
    """Run the operator until ``stop_flag`` is set (or forever).

    With ``leader_election`` it first waits to lead (a follower serves only its health
    endpoint), and stops with an error if it loses the lease (its pod restarts as a follower)."""
    from . import handlers  # noqa: F401,PLC0415 - registers every handler on REGISTRY
    from .doctor.run import report_at_startup  # noqa: PLC0415
    from .health import HealthState, serve  # noqa: PLC0415
    from .leader import LeaderElector, identity  # noqa: PLC0415
    from .memory import trim_periodically  # noqa: PLC0415

    memo = build_memo(spe)
    ready_flag = ready_flag if ready_flag is not None else asyncio.Event()
    state = HealthState(ready_flag=ready_flag)
    health = await serve(state, spe.webhook_host, spe.health_port) if spe.health_port else None
    elector = None
    try:
        if spe.leader_election:
            elector = LeaderElector(memo.kube, spe.operator_namespace, spe.leader_lease_name, identity(),
                                    spe.leader_lease_seconds)
            state.elector = elector
            await elector.acquire()
        await wait_for_crds(memo.kube, timeout=spe.crd_wait_timeout)
        operator = asyncio.create_task(kopf.operator(
            registry=REGISTRY,
            clusterwide=True,
            standalone=spe.standalone,
            memo=memo,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            # Kopf would name itself after the user (getpass), and a container's numeric user
            # (65532) has no passwd entry: it would fail at start.
            identity=elector.me if elector else identity(),
        ))
        preflight = asyncio.create_task(_preflight_when_ready(memo, spe, ready_flag, report_at_startup))
        trimming = asyncio.create_task(trim_periodically(spe.memory_trim_interval))
        waited = {operator} | ({asyncio.create_task(elector.hold())} if elector else set())
        done, pending = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        for task in (*pending, preflight, trimming):
            task.cancel()
        await asyncio.gather(*pending, preflight, trimming, return_exceptions=True)
        if operator not in done:
            raise RuntimeError(f"lost the leader Lease {spe.operator_namespace}/{spe.leader_lease_name}: "
                               "stopping so that only one operator reconciles")
        operator.result()
    finally:
        if elector is not None:
            await elector.release()
        if health is not None:
            await health.cleanup()


async def _preflight_when_ready(memo: kopf.Memo, spe: SpeSettings, ready_flag: Any, report) -> None:
    """The doctor's in-pod checks once the operator is up, as Events on its namespace."""
    while not ready_flag.is_set():
        await asyncio.sleep(0.5)
    try:
        await report(memo.kube, spe, memo.get("audit"))
    except Exception as exc:  # noqa: BLE001 - a report must never stop the operator
        log.warning("preflight checks could not run: %s", exc)


def run_in_thread(spe: SpeSettings, *, timeout: float = 60.0) -> tuple[threading.Thread, threading.Event]:
    """Run the operator in a background thread (its own event loop); returns (thread, stop_event).

    Used by the test suite and ``make demo``. Blocks until the operator reports ready.
    """
    stop = threading.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    def _main() -> None:
        try:
            asyncio.run(run(spe, stop_flag=stop, ready_flag=ready))
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=_main, name="spe-operator", daemon=True)
    thread.start()
    if not ready.wait(timeout):
        stop.set()
        raise TimeoutError(f"operator not ready within {timeout}s")
    if errors:
        raise RuntimeError("operator failed to start") from errors[0]
    return thread, stop
