"""Kopf handlers of Datasets: thin. Events of Datasets enqueue the Dataset (those of its ingest
Jobs, their pods and its claims come through the controller's own label-selected watches,
``spe_kube.watch``); the controller (``spe_operator.datasets.controller``) does the one
reconcile and is the only writer of ``Dataset.status``.

No handler patches Datasets themselves, so Kopf keeps no finalizer or progress annotation on
them: every child (claims, Jobs, the pseudonyms Secret) is owned by the Dataset and goes with it.
"""

from __future__ import annotations

from typing import Any

import kopf

from spe_kube import KubeClient

from ..datasets.controller import DatasetController
from ..registry import REGISTRY

GROUP, VERSION = "spe.ehds.io", "v1alpha1"
DATASET_POOL = 8


@kopf.on.startup(registry=REGISTRY)
async def start_dataset_controller(memo: kopf.Memo, **_: Any) -> None:
    if not memo.settings.dataset_reconciler:
        memo.dataset_controller = None
        return
    kube = KubeClient(memo.kube.config, timeout=memo.settings.request_timeout, pool_size=DATASET_POOL)
    memo.dataset_controller = DatasetController(kube, memo.settings, audit=memo.get("audit"))
    await memo.dataset_controller.start()


@kopf.on.cleanup(registry=REGISTRY)
async def stop_dataset_controller(memo: kopf.Memo, **_: Any) -> None:
    controller = memo.get("dataset_controller")
    if controller is not None:
        await controller.stop()
        await controller.kube.close()


def _enqueue(memo: kopf.Memo, name: str | None) -> None:
    controller = memo.get("dataset_controller")
    if controller is not None and name:
        controller.enqueue(name)


@kopf.on.event(GROUP, VERSION, "datasets", registry=REGISTRY)
async def dataset_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _enqueue(memo, body["metadata"]["name"])
