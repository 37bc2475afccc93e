"""Leader election for several operator replicas, on a coordination.k8s.io Lease (the same
protocol as client-go's leaderelection): the replica whose identity is the Lease's holder runs
the reconcilers and the webhook; the others wait, and take over when the holder stops renewing
for ``lease_seconds``. Kopf's own peering only pauses operators of *lower* priority and lets
equal ones run side by side, so it is not used for this.

A holder that cannot renew within the lease gives up leadership by stopping the operator (the
process exits and its pod restarts as a follower): two writers of the audit trail and two
reconcilers at once are what this prevents.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from spe_kube import ApiError, KubeClient, kind_for

LEASE = kind_for("coordination.k8s.io/v1", "Lease")
log = logging.getLogger(__name__)


def identity() -> str:
    """The pod's name (its hostname) and a random suffix: a restarted container is a new candidate."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _stamp(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def expired(spec: dict[str, Any], now: datetime.datetime) -> bool:
    """Whether the holder recorded in a Lease's spec has stopped renewing (pure)."""
    if not spec.get("holderIdentity"):
        return True
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    if renewed is None:
        return True
    return now > renewed + datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))


def taken_spec(spec: dict[str, Any], me: str, lease_seconds: int, now: datetime.datetime) -> dict[str, Any]:
    """The spec of a Lease this candidate takes over (pure)."""
    transitions = int(spec.get("leaseTransitions") or 0) + (1 if spec.get("holderIdentity") else 0)
    return {"holderIdentity": me, "leaseDurationSeconds": lease_seconds, "acquireTime": _stamp(now),
            "renewTime": _stamp(now), "leaseTransitions": transitions}


@dataclass
class LeaderElector:
    kube: KubeClient
    namespace: str
    name: str
    me: str
    lease_seconds: int = 15
    leading: bool = False

    @property
    def retry_seconds(self) -> float:
        return max(1.0, self.lease_seconds / 5)

    async def _try_acquire(self) -> bool:
        now = _now()
        lease = await self.kube.get_or_none(LEASE, self.name, self.namespace)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "labels": {"app.kubernetes.io/part-of": "spe",
                                            "app.kubernetes.io/component": "operator"}},
                    "spec": taken_spec({}, self.me, self.lease_seconds, now)}
            try:
                await self.kube.create(body)
                return True
            except ApiError as exc:
                if exc.conflict:
                    return False
                raise
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.me and not expired(spec, now):
            return False
        lease["spec"] = taken_spec(spec, self.me, self.lease_seconds, now)
        try:  # a PUT carries the resourceVersion read: of two candidates, one wins
            await self.kube.request("PUT", LEASE.path(self.namespace, self.name), body=lease)
            return True
        except ApiError as exc:
            if exc.conflict:
                return False
            raise

    async def acquire(self) -> None:
        """Wait until this candidate holds the Lease."""
        logged = False
        while True:
            try:
                if await self._try_acquire():
                    self.leading = True
                    log.info("leader election: %s leads (Lease %s/%s)", self.me, self.namespace, self.name)
                    return
            except (ApiError, OSError, asyncio.TimeoutError) as exc:
                log.warning("leader election: cannot read or take Lease %s/%s: %s", self.namespace, self.name, exc)
            if not logged:
                log.info("leader election: %s waits for Lease %s/%s", self.me, self.namespace, self.name)
                logged = True
            await asyncio.sleep(self.retry_seconds)

    async def _renew(self) -> bool:
        lease = await self.kube.get(LEASE, self.name, self.namespace)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.me:
            return False
        spec["renewTime"] = _stamp(_now())
        await self.kube.request("PUT", LEASE.path(self.namespace, self.name), body=lease)
        return True

    async def hold(self) -> None:
        """Renew the Lease until it is lost (returns then): another holder, or no successful
        renewal for ``lease_seconds`` (deliberately less than the lease, so a partitioned
        leader stops before another may start)."""
        last_ok = asyncio.get_running_loop().time()
        deadline = self.lease_seconds * 2 / 3
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                if not await self._renew():
                    log.error("leader election: Lease %s/%s was taken over; stopping", self.namespace, self.name)
                    break
                last_ok = asyncio.get_running_loop().time()
            except (ApiError, OSError, asyncio.TimeoutError) as exc:
                log.warning("leader election: renewal failed: %s", exc)
                if asyncio.get_running_loop().time() - last_ok > deadline:
                    log.error("leader election: no renewal for %.0fs; stopping", deadline)
                    break
        self.leading = False

    async def release(self) -> None:
        """On a clean stop: hand the Lease over at once instead of making the next leader wait."""
        if not self.leading:
            return
        try:
            lease = await self.kube.get(LEASE, self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") == self.me:
                lease["spec"]["holderIdentity"] = None
                await self.kube.request("PUT", LEASE.path(self.namespace, self.name), body=lease)
        except (ApiError, OSError, asyncio.TimeoutError) as exc:
            log.warning("leader election: could not release the Lease: %s", exc)
        self.leading = False
