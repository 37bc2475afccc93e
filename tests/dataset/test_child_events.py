"""The Dataset reconciler's own watches of its Jobs, pods and claims: each event wakes the Dataset
its object is labelled with, and a deletion seen on a re-list (a body with the name only) wakes
the Dataset the object carried before."""

from __future__ import annotations

import pytest

from spe_operator.datasets.controller import DatasetController
from spe_operator.settings import SpeSettings

pytestmark = pytest.mark.dataset


def _obj(kind: str, name: str, dataset: str | None, namespace: str = "spe-system") -> dict:
    labels = {"spe.ehds.io/dataset": dataset} if dataset else {}
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels}}


async def _queued(controller: DatasetController) -> list[str]:
    out = []
    while not controller._queue._ready.empty():
        key = await controller._queue.get()
        controller._queue.done(key)
        out.append(key)
    return out


async def test_labelled_events_wake_their_dataset_and_a_bare_deletion_the_one_it_had():
    controller = DatasetController(kube=None, settings=SpeSettings())
    controller.on_child_event("ADDED", _obj("Job", "ct-r1-ingest", "ct"))
    controller.on_child_event("MODIFIED", _obj("Pod", "ct-r1-ingest-abcde", "ct"))
    controller.on_child_event("ADDED", _obj("PersistentVolumeClaim", "dataset-mr-r1", "mr"))
    assert await _queued(controller) == ["ct", "mr"]      # one reconcile per Dataset, however many events

    # a re-list after an expired watch reports what vanished meanwhile by name only
    controller.on_child_event("DELETED", {"kind": "Pod", "metadata": {"name": "ct-r1-ingest-abcde",
                                                                     "namespace": "spe-system"}})
    assert await _queued(controller) == ["ct"]
    # ... and forgets it: a second report of the same deletion wakes nothing
    controller.on_child_event("DELETED", {"kind": "Pod", "metadata": {"name": "ct-r1-ingest-abcde",
                                                                     "namespace": "spe-system"}})
    assert await _queued(controller) == []
    # the same name in another kind or namespace is another object
    controller.on_child_event("DELETED", _obj("PersistentVolumeClaim", "dataset-mr-r1", "mr"))
    assert await _queued(controller) == ["mr"]
    assert controller._child_dataset == {("Job", "spe-system", "ct-r1-ingest"): "ct"}
