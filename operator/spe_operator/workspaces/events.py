"""Kubernetes Events on a Workspace, for what a person should see in ``kubectl describe``:
started, stopped (and why), blocked (and why), unschedulable, idle stop."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from spe_kube import ApiError, KubeClient

log = logging.getLogger(__name__)

COMPONENT = "spe-operator"
NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024


def build_event(involved: Mapping[str, Any], *, type_: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    md = involved["metadata"]
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{md['name']}.{secrets.token_hex(8)}", "namespace": md.get("namespace") or "default"},
        "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": md["name"],
                           "namespace": md.get("namespace"), "uid": md.get("uid"),
                           "resourceVersion": md.get("resourceVersion")},
        "type": type_,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(kube: KubeClient, involved: Mapping[str, Any], *, type_: str, reason: str, message: str,
                     now: datetime | None = None) -> None:
    """Post an Event; never fails the reconcile (an Event is information, not state)."""
    try:
        await kube.create(build_event(involved, type_=type_, reason=reason, message=message,
                                      now=now or datetime.now(timezone.utc)))
    except (ApiError, OSError) as exc:
        log.warning("could not post Event %s on %s: %s", reason, involved["metadata"].get("name"), exc)
