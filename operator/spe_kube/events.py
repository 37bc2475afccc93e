"""Kubernetes Events: what a person reads in ``kubectl describe`` (a workspace started or was
stopped and why, a permit expired, a GPU stopped answering).

One builder and one poster for every component. Posting is best effort: an Event is
information, not state, so a refused or lost one is logged and never fails the caller. The
reporting component is the client's field manager (``spe-operator``, ``spe-gpu-agent``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .client import ApiError, KubeClient

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024
# Events about cluster-scoped objects (a DataPermit, a Node) live here, as kubectl looks for them.
CLUSTER_EVENT_NAMESPACE = "default"
_REF_KEYS = ("apiVersion", "kind", "name", "namespace", "uid", "resourceVersion")


def object_ref(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ``involvedObject`` of a manifest (a body from the API, or a reference already)."""
    md = obj.get("metadata")
    flat = {**obj, **md} if isinstance(md, Mapping) else dict(obj)
    return {k: flat[k] for k in _REF_KEYS if flat.get(k)}


def build_event(involved: Mapping[str, Any], *, type_: str, reason: str, message: str, component: str,
                now: datetime, host: str | None = None) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (a manifest or an object reference)."""
    ref = object_ref(involved)
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = {"component": component, **({"host": host} if host else {})}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{ref['name']}.",
                     "namespace": ref.get("namespace") or CLUSTER_EVENT_NAMESPACE},
        "involvedObject": ref,
        "type": type_,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": source,
        "reportingComponent": component,
        "reportingInstance": os.uname().nodename[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(kube: KubeClient, involved: Mapping[str, Any], *, type_: str = NORMAL, reason: str,
                     message: str, now: datetime | None = None, host: str | None = None) -> None:
    """Post an Event about ``involved``; never raises for a refused or lost one."""
    event = build_event(involved, type_=type_, reason=reason, message=message, component=kube.field_manager,
                        now=now or datetime.now(timezone.utc), host=host)
    try:
        await kube.create(event)
    except (ApiError, OSError) as exc:
        log.warning("could not post Event %s on %s %s: %s", reason, event["involvedObject"].get("kind"),
                    event["involvedObject"].get("name"), exc)
