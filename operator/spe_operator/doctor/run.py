"""Running the doctor: every check from the command line, the in-pod subset at operator start
(reported as Events on the operator's Namespace, a cluster-scoped object: the API server keeps
the Events of cluster-scoped objects in the namespace ``default``; ``kubectl describe namespace
spe-system`` shows them)."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from spe_api import Reason
from spe_kube import ApiError, KubeClient, kind_for

from ..settings import SpeSettings
from . import checks, netprobe
from .report import CheckResult, Status, exit_code, verdict

log = logging.getLogger(__name__)
EVENT = kind_for("v1", "Event")
EVENTS_NAMESPACE = checks.EVENTS_NAMESPACE   # where the API server keeps Events of cluster-scoped objects
COMPONENT = "spe-operator-doctor"


def read_settings_file(path: str | Path) -> dict[str, str]:
    """An installer's settings file (``KEY=value`` lines, ``#`` comments: kustomize's env format)."""
    values: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: expected KEY=value, got {line!r}")
        values[key.strip()] = value.strip()
    return values


def installation(spe: SpeSettings) -> CheckResult:
    """What is being checked: the tier and the namespace the settings name."""
    return CheckResult("installation", Status.OK, f"tier {spe.federation_role}, operator namespace "
                                                  f"{spe.operator_namespace}, settings valid")


async def run_all(kube: KubeClient, spe: SpeSettings, *, probe_image: str | None, probe_node: str | None = None,
                  network: bool = True) -> list[CheckResult]:
    results = [installation(spe)]
    if network:
        results.append(await netprobe.check_network_policy(kube, probe_image, node=probe_node))
    else:
        results.append(CheckResult(netprobe.NAME, Status.FAIL, "not checked (--skip-network): enforcement unproven",
                                   "run the doctor without --skip-network"))
    results.append(await checks.check_storage(kube, spe))
    results.append(await checks.check_idp(spe))
    results.append(await checks.check_gpu_labels(kube, spe))
    results.append(await checks.check_webhook(kube, spe))
    results.append(await checks.check_audit_published(kube, spe))
    return results


async def startup_checks(kube: KubeClient, spe: SpeSettings) -> list[CheckResult]:
    """What the operator checks about itself when it starts (no probe pods: its role may not
    create them; `spe-operator doctor` runs the network check)."""
    return [installation(spe), await checks.check_storage(kube, spe), await checks.check_idp(spe),
            checks.check_audit_sink(spe)]   # GPU labels: the operator may not read nodes (the doctor does)


def event_for(result: CheckResult, namespace: str, now: datetime.datetime) -> dict:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    ok = result.ok
    message = result.detail + ("" if ok or not result.fix else f"; fix: {result.fix}")
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{namespace}.preflight-", "namespace": EVENTS_NAMESPACE,
                         "labels": {"spe.ehds.io/check": result.name}},
            "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
            "reason": Reason.PREFLIGHT_PASSED if ok else Reason.PREFLIGHT_FAILED,
            "type": "Normal" if ok else "Warning",
            "message": f"{result.name}: {result.status.value}: {message}"[:1024],
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT, "action": "Preflight",
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1}


async def report_at_startup(kube: KubeClient, spe: SpeSettings, audit=None) -> list[CheckResult]:
    results = await startup_checks(kube, spe)
    if audit is not None and all(r.ok for r in results if r.name == "audit-sink"):
        try:  # a checkpoint at start: the trail is seen to be written and published (the doctor looks)
            await audit.checkpoint()
        except Exception as exc:  # noqa: BLE001 - reported as the audit sink's failure
            results = [r if r.name != "audit-sink" else CheckResult(
                "audit-sink", Status.FAIL, f"the start-up checkpoint failed: {exc}",
                "check the audit volume and the signing key Secret spe-audit-signing-key") for r in results]
    now = datetime.datetime.now(datetime.timezone.utc)
    for result in results:
        (log.info if result.ok else log.warning)("preflight %s: %s: %s", result.name, result.status.value,
                                                 result.detail)
        try:
            await kube.create(event_for(result, spe.operator_namespace, now))
        except ApiError as exc:
            log.warning("could not post the preflight event for %s: %s", result.name, exc)
    log.log(logging.INFO if exit_code(results) == 0 else logging.WARNING, "preflight: %s", verdict(results))
    return results


__all__ = ["Status", "read_settings_file", "report_at_startup", "run_all", "startup_checks"]
