"""What the DataPermit reconciler calls: the group sync with its backoff and cache, the
finalizer, and the IdentitySynced condition in the permit's status.

A sync failure never raises into the reconcile: it becomes the condition (False, with the
reason) and a retry delay, so the namespace, its policies and the workspaces carry on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from spe_api import (IDENTITY_FINALIZER, KEEP_GROUP_ANNOTATION, ConditionType, DataPermit, DataPermitPhase,
                     DataPermitStatus, Message, Reason, get_condition, permit_group, set_condition)
from spe_kube import ApiError, KubeClient

from .client import IdentityProvider, IdentityRefused, IdentityUnavailable
from .plan import IdentityOutcome, error_outcome, not_configured_outcome, unreachable_outcome
from .sync import remove_group, sync_group

log = logging.getLogger(__name__)

BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
RESYNC_FRACTION = 0.9  # a permit unchanged since its last good sync is synced again after 0.9 x interval


def backoff(failures: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_MIN * 2 ** max(0, failures - 1))


@dataclass
class _State:
    digest: str = ""
    synced_at: float = float("-inf")
    failures: int = 0


@dataclass(frozen=True)
class Finalized:
    """What the finalizer step did: retry after ``retry`` seconds, or done (None); ``note``, when
    set, is worth a Warning Event on the permit."""

    retry: float | None
    note: str | None = None
    reason: str = ""


class PermitIdentity:
    """The operator's one identity-sync state (``memo.permit_identity``)."""

    def __init__(self, provider: IdentityProvider | None, *, kind: Any, interval: float):
        self.provider = provider
        self._kind = kind  # the DataPermit ResourceKind (for the finalizer patch)
        self._interval = interval
        self._state: dict[str, _State] = {}

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def forget(self, name: str) -> None:
        self._state.pop(name, None)

    async def close(self) -> None:
        if self.provider is not None:
            await self.provider.close()

    # --- the group ------------------------------------------------------------------------

    async def sync(self, kube: KubeClient, body: dict, permit: DataPermit,
                   phase: DataPermitPhase) -> tuple[IdentityOutcome | None, float | None]:
        """Sync the permit's group unless nothing changed since the last good sync (and it is
        younger than the periodic interval). Returns the outcome to record (None: keep the
        recorded condition) and the seconds to the next try when it failed."""
        if self.provider is None:
            return not_configured_outcome(), None
        try:
            await self._ensure_finalizer(kube, body)
        except ApiError as exc:
            if exc.conflict or exc.not_found:  # changed or gone meanwhile: the next reconcile sees it
                return None, 0.5
            raise
        digest = hashlib.sha256(json.dumps([permit.metadata.uid, phase.value,
                                            [m.subject for m in permit.spec.members]]).encode()).hexdigest()
        loop = asyncio.get_running_loop()
        state = self._state.setdefault(permit.name, _State())
        if (state.digest == digest and not state.failures
                and loop.time() - state.synced_at < self._interval * RESYNC_FRACTION):
            return None, None
        group = permit_group(permit.name)
        try:
            report = await sync_group(self.provider, permit, phase)
        except IdentityUnavailable as exc:
            state.failures += 1
            log.warning("DataPermit %s: identity provider unreachable (attempt %d): %s", permit.name,
                        state.failures, exc)
            return unreachable_outcome(url=self.provider.url, group=group, error=str(exc),
                                       recorded_group=permit.status.group), backoff(state.failures)
        except IdentityRefused as exc:
            state.failures += 1
            log.warning("DataPermit %s: identity provider refused the sync (attempt %d): %s", permit.name,
                        state.failures, exc)
            return error_outcome(client=self.provider.client_id, group=group, error=str(exc),
                                 recorded_group=permit.status.group), backoff(state.failures)
        state.digest, state.synced_at, state.failures = digest, loop.time(), 0
        outcome = report.outcome
        recorded = get_condition(permit.status.conditions, ConditionType.IDENTITY_SYNCED)
        if (outcome.reason == Reason.GROUP_EMPTIED and not report.plan.changes and recorded is not None
                and recorded.reason == Reason.GROUP_EMPTIED):
            # still empty: keep saying how many sessions the emptying ended (this sync ended none)
            outcome = replace(outcome, message=recorded.message)
        return outcome, None

    # --- the finalizer --------------------------------------------------------------------

    async def _ensure_finalizer(self, kube: KubeClient, body: dict) -> None:
        md = body["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if IDENTITY_FINALIZER in finalizers:
            return
        await self._set_finalizers(kube, md, [*finalizers, IDENTITY_FINALIZER])

    async def _set_finalizers(self, kube: KubeClient, md: dict, finalizers: list[str]) -> None:
        # resourceVersion makes the merge patch conditional: never drop a finalizer someone
        # else added in between (a conflict is retried by the next reconcile).
        await kube.merge_patch(self._kind, md["name"], {"metadata": {
            "finalizers": finalizers, "resourceVersion": md["resourceVersion"]}})

    async def finalize(self, kube: KubeClient, body: dict) -> Finalized:
        """The permit is being deleted: remove its group, then let it go."""
        md = body["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if IDENTITY_FINALIZER not in finalizers:
            return Finalized(None)
        name = md["name"]
        group = permit_group(name)
        note, reason = None, ""
        if (md.get("annotations") or {}).get(KEEP_GROUP_ANNOTATION) == "true":
            note, reason = Message.IDENTITY_GROUP_LEFT_BEHIND.format(annotation=KEEP_GROUP_ANNOTATION,
                                                                    group=group), Reason.GROUP_LEFT_BEHIND
            log.warning("DataPermit %s: %s", name, note)
        elif self.provider is None:
            message = Message.IDENTITY_GROUP_NOT_REMOVED_UNCONFIGURED.format(group=group,
                                                                            annotation=KEEP_GROUP_ANNOTATION)
            log.warning("DataPermit %s: %s", name, message)
            return Finalized(self._interval, message, Reason.IDENTITY_PROVIDER_NOT_CONFIGURED)
        else:
            state = self._state.setdefault(name, _State())
            try:
                ended = await remove_group(self.provider, name)
            except (IdentityUnavailable, IdentityRefused) as exc:
                state.failures += 1
                log.warning("DataPermit %s: group %s not removed (attempt %d): %s", name, group, state.failures, exc)
                return Finalized(backoff(state.failures),
                                 Message.IDENTITY_GROUP_NOT_REMOVED.format(group=group, error=exc,
                                                                          annotation=KEEP_GROUP_ANNOTATION),
                                 Reason.IDENTITY_PROVIDER_UNREACHABLE if isinstance(exc, IdentityUnavailable)
                                 else Reason.IDENTITY_PROVIDER_ERROR)
            log.info("DataPermit %s: group %s removed (%d hub session(s) ended)", name, group, ended)
        try:
            await self._set_finalizers(kube, md, [f for f in finalizers if f != IDENTITY_FINALIZER])
        except ApiError as exc:
            if exc.not_found:
                return Finalized(None)
            if exc.conflict:
                return Finalized(0.5)
            raise
        self.forget(name)
        return Finalized(None, note, reason)


def with_identity(status: DataPermitStatus, outcome: IdentityOutcome, generation: int | None,
                  now: datetime) -> DataPermitStatus:
    """The status with the IdentitySynced condition and ``group`` set from ``outcome``."""
    conds = set_condition(status.conditions, ConditionType.IDENTITY_SYNCED, outcome.status, outcome.reason,
                          outcome.message, generation, now)
    return status.model_copy(update={"conditions": conds, "group": outcome.group})


def make_identity(settings: Any, kind: Any) -> PermitIdentity:
    provider = None
    if settings.identity_configured:
        provider = IdentityProvider(
            settings.keycloak_url, settings.keycloak_realm, settings.keycloak_client_id,
            settings.keycloak_client_secret.get_secret_value(), hub_client_id=settings.keycloak_hub_client_id,
            timeout=settings.keycloak_timeout, verify=settings.keycloak_verify)
        log.info("identity sync on: realm %s at %s as client %s", settings.keycloak_realm, settings.keycloak_url,
                 settings.keycloak_client_id)
    else:
        log.info("identity sync off: no Keycloak configured (keycloak_url, keycloak_client_secret)")
    return PermitIdentity(provider, kind=kind, interval=settings.reconcile_interval)
