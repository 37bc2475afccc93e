"""The node's side of the lease: is central still in contact? (pure)

Central's ``spe-federation`` ManifestWork carries a heartbeat ConfigMap whose ``sentAt`` it moves
forward at every sync; the node's work agent applies it only while it reaches central. A node
that has seen no newer heartbeat for longer than ``federation_lease`` (default 15 min) suspends
every mirrored permit with a reason, and they resume when a fresh heartbeat arrives. No
heartbeat at all counts as no contact (fail closed). Clocks must agree to well within the lease
(NTP); the comparison uses central's stamp and the node's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from spe_api import DataPermit
from spe_api.common import utc

from . import LABEL_MIRRORED


@dataclass(frozen=True)
class Contact:
    lost: bool
    last_heartbeat: datetime | None
    message: str


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return utc(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    except ValueError:
        return None


def contact(heartbeat: Mapping[str, Any] | None, now: datetime, lease_seconds: float) -> Contact:
    last = _parse(((heartbeat or {}).get("data") or {}).get("sentAt"))
    lease = timedelta(seconds=lease_seconds)
    if last is None:
        return Contact(True, None, f"no heartbeat from central has reached this node (lease {_dur(lease)}): "
                                   "mirrored permits stay suspended until one does; check the klusterlet agent")
    if utc(now) - last > lease:
        return Contact(True, last, f"no contact with central since {last:%Y-%m-%dT%H:%M:%SZ} (lease {_dur(lease)}): "
                                   "mirrored permits are suspended until contact returns; check the klusterlet "
                                   "agent and the node's outbound connection to central")
    return Contact(False, last, f"in contact with central (last heartbeat {last:%Y-%m-%dT%H:%M:%SZ})")


def _dur(d: timedelta) -> str:
    s = int(d.total_seconds())
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def is_mirrored(body: Mapping[str, Any]) -> bool:
    return ((body.get("metadata") or {}).get("labels") or {}).get(LABEL_MIRRORED) == "true"


def effective_permit(permit: DataPermit, mirrored: bool, state: Contact | None) -> DataPermit:
    """A mirrored permit as the node must treat it: suspended while central is out of reach
    (unless central already revoked or suspended it). Other permits are returned unchanged."""
    if not mirrored or state is None or not state.lost or permit.spec.revoked or permit.spec.suspended:
        return permit
    spec = permit.spec.model_copy(update={"suspended": True, "suspension_reason": state.message})
    return permit.model_copy(update={"spec": spec})
