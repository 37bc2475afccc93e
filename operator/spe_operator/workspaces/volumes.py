"""The workspace's own volumes: home and outputs claims from an encrypted storage class.

Research data and results must be encrypted at rest, so the class is chosen only among those
the operator's settings mark as encrypted. With none configured the workspace gets a clear
condition and no volume (and so no server), unless the development-only setting
``allow_unencrypted_storage`` is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spe_api import Reason, Workspace
from spe_api.reasons import WorkspaceMessage as M

from ..settings import SpeSettings
from . import names

CLAIM_ACCESS_MODES = ["ReadWriteOnce"]


@dataclass(frozen=True)
class StorageChoice:
    """Which class the workspace's claims use, or why there are none."""

    ok: bool
    storage_class: str | None  # None with ok=True: the cluster's default class (development only)
    reason: str
    message: str


def choose_storage_class(ws: Workspace, settings: SpeSettings) -> StorageChoice:
    """The workspace's class if it names one, else the configured default, else the first
    encrypted class; accepted only if encrypted (or the development setting allows it)."""
    encrypted = list(settings.encrypted_storage_classes)
    chosen = ws.spec.storage.storage_class_name or settings.default_storage_class or (encrypted[0] if encrypted else None)
    if chosen is not None and chosen in encrypted:
        return StorageChoice(True, chosen, Reason.VOLUMES_READY, M.VOLUMES_READY.format(storage_class=chosen))
    if settings.allow_unencrypted_storage:
        shown = repr(chosen) if chosen else "the cluster's default storage class"
        return StorageChoice(True, chosen, Reason.UNENCRYPTED_STORAGE_ALLOWED,
                             M.UNENCRYPTED_STORAGE_ALLOWED.format(storage_class=shown))
    if chosen is None:
        return StorageChoice(False, None, Reason.NO_ENCRYPTED_STORAGE_CLASS, M.NO_ENCRYPTED_STORAGE_CLASS)
    return StorageChoice(False, None, Reason.STORAGE_CLASS_NOT_ENCRYPTED, M.STORAGE_CLASS_NOT_ENCRYPTED.format(
        storage_class=chosen, encrypted=", ".join(encrypted) or "none configured"))


def build_claim(ws: Workspace, volume: str, choice: StorageChoice) -> dict[str, Any]:
    """One claim (``home`` or ``outputs``), the workspace's storage size each."""
    name = names.home_claim_name(ws.name) if volume == names.HOME_VOLUME else names.outputs_claim_name(ws.name)
    spec: dict[str, Any] = {
        "accessModes": list(CLAIM_ACCESS_MODES),
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": ws.spec.storage.size}},
    }
    if choice.storage_class is not None:
        spec["storageClassName"] = choice.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ws.namespace, "labels": {names.LABEL_VOLUME: volume}},
        "spec": spec,
    }


def build_volume_claims(ws: Workspace, settings: SpeSettings) -> tuple[list[dict[str, Any]], StorageChoice]:
    """The home and outputs claims (none when no acceptable class exists), and the choice made."""
    choice = choose_storage_class(ws, settings)
    if not choice.ok:
        return [], choice
    return [build_claim(ws, names.HOME_VOLUME, choice), build_claim(ws, names.OUTPUTS_VOLUME, choice)], choice
