"""Issue #12, item 2 (workspace side) on the real control plane: a workspace mounts only the
volume the Dataset reconciler produced (its ingest claim in the operator's namespace, found by
labels and owner), never a volume named in a hand-patched Dataset status."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.datasetvolumes import ingest_claim

from . import factories as f
from .helpers import condition, ws_path
from .test_on_cluster import wait_phase

pytestmark = pytest.mark.workspace


def _decoy(kube, name: str, path) -> dict:
    pv = {"apiVersion": "v1", "kind": "PersistentVolume",
          "metadata": {"name": name, "labels": {"spe.ehds.io/test": "true"}},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                   "hostPath": {"path": str(path), "type": "Directory"}}}
    kube.create(pv)
    return pv


def _copied_path(kube, env, dataset: str, revision: int = 1) -> str | None:
    claim = kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/persistentvolumeclaims/ds.{dataset}.r{revision}")
    if claim is None:
        return None
    pv = kube.get_or_none(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    return pv["spec"]["hostPath"]["path"]


def test_a_hand_patched_status_mounts_nothing(kube, ws_env, suffix, tmp_path):
    env = ws_env
    decoy = _decoy(kube, f"decoy-{suffix}-{env.permit}", tmp_path)
    forged = f.dataset(f"forged-{suffix}-{env.permit}")
    kube.create(forged)
    try:
        # Whoever can write status says Ready and names a volume: no ingest claim, no mount.
        kube.patch_status(forged, {"status": {"phase": "Ready", "volumeName": decoy["metadata"]["name"],
                                              "claimName": "anything"}})
        env.create_permit(datasets=[forged["metadata"]["name"]])
        kube.create(env.workspace(running=True, datasets=[forged["metadata"]["name"]]))
        ws = wait_phase(kube, env, "Blocked")
        cond = condition(ws, "DatasetsReady")
        assert cond["status"] == "False" and cond["reason"] == "DatasetVolumeMissing", cond
        assert "no ready ingest claim" in cond["message"] and forged["metadata"]["name"] in cond["message"]
        assert not kube.items(f"/api/v1/namespaces/{env.namespace}/persistentvolumeclaims", "spe.ehds.io/dataset")
    finally:
        kube.delete_quietly(forged)
        kube.delete_quietly(decoy)


def test_a_claim_not_owned_by_the_dataset_or_not_ready_is_not_mounted(kube, ws_env, suffix, tmp_path):
    env = ws_env
    ds = f.dataset(f"owned-{suffix}-{env.permit}")
    created = kube.create(ds)
    other = kube.create(f.dataset(f"other-{suffix}-{env.permit}"))
    made = []
    try:
        (tmp_path / "r1").mkdir()
        (tmp_path / "r2").mkdir()
        (tmp_path / "r3").mkdir()
        # r1: ready, the Dataset's own; r2: still ingesting; r3: "ready" but owned by another Dataset
        pv1, c1 = ingest_claim(created, tmp_path / "r1", revision=1)
        pv2, c2 = ingest_claim(created, tmp_path / "r2", revision=2, state="ingesting")
        pv3, c3 = ingest_claim(created, tmp_path / "r3", revision=3)
        c3["metadata"]["ownerReferences"][0]["uid"] = other["metadata"]["uid"]
        for obj in (pv1, c1, pv2, c2, pv3, c3):
            kube.create(obj)
            made.append(obj)
        kube.patch_status(ds, {"status": {"phase": "Ready", "volumeName": pv3["metadata"]["name"]}})
        env.create_permit(datasets=[ds["metadata"]["name"]])
        kube.create(env.workspace(running=True, datasets=[ds["metadata"]["name"]]))
        wait_phase(kube, env, "Running")
        assert _copied_path(kube, env, ds["metadata"]["name"]) == str(tmp_path / "r1")
    finally:
        for obj in reversed(made):
            kube.delete_quietly(obj)
        kube.delete_quietly(ds)
        kube.delete_quietly(other)


def test_a_workspace_waits_for_its_ingest_and_starts_when_the_claim_turns_ready(kube, ws_env, suffix, tmp_path):
    env = ws_env
    ds = f.dataset(f"late-{suffix}-{env.permit}")
    created = kube.create(ds)
    pv, claim = ingest_claim(created, tmp_path, revision=1, state="ingesting")
    made = [pv, claim]
    try:
        for obj in made:
            kube.create(obj)
        kube.patch_status(ds, {"status": {"phase": "Ready"}})
        env.create_permit(datasets=[ds["metadata"]["name"]])
        kube.create(env.workspace(running=True, datasets=[ds["metadata"]["name"]]))
        ws = wait_phase(kube, env, "Blocked")
        assert "ingesting" in condition(ws, "DatasetsReady")["message"]
        # The Dataset reconciler marks the claim ready: the watch on ingest claims starts the server.
        kube.patch(f"/api/v1/namespaces/spe-system/persistentvolumeclaims/{claim['metadata']['name']}",
                   {"metadata": {"labels": {"spe.ehds.io/dataset-state": "ready"}}})
        wait_phase(kube, env, "Running")
        assert _copied_path(kube, env, ds["metadata"]["name"]) == str(tmp_path)
    finally:
        for obj in reversed(made):
            kube.delete_quietly(obj)
        kube.delete_quietly(ds)


def _sts_claim(kube, env) -> str:
    sts = kube.get_or_none(f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets/ws")
    return next(v["persistentVolumeClaim"]["claimName"] for v in sts["spec"]["template"]["spec"]["volumes"]
                if v["name"].startswith("ds-"))


def test_a_new_revision_leaves_a_running_server_alone_and_is_mounted_at_its_next_start(kube, ws_env, suffix,
                                                                                       tmp_path):
    env = ws_env
    ds = f.dataset(f"rev-{suffix}-{env.permit}")
    created = kube.create(ds)
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    made = []
    try:
        pv1, c1 = ingest_claim(created, tmp_path / "r1", revision=1)
        for obj in (pv1, c1):
            kube.create(obj)
            made.append(obj)
        kube.patch_status(ds, {"status": {"phase": "Ready"}})
        name = ds["metadata"]["name"]
        env.create_permit(datasets=[name])
        kube.create(env.workspace(running=True, datasets=[name]))
        wait_phase(kube, env, "Running")
        assert _sts_claim(kube, env) == f"ds.{name}.r1"
        # A re-ingest completes (revision 2 ready): the running server keeps revision 1.
        pv2, c2 = ingest_claim(created, tmp_path / "r2", revision=2)
        for obj in (pv2, c2):
            kube.create(obj)
            made.append(obj)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert _sts_claim(kube, env) == f"ds.{name}.r1"
            time.sleep(1)
        # Stopped and started again: revision 2, through a copy of its own (a volume's source is immutable).
        kube.patch(ws_path(env.namespace, "ws"), {"spec": {"running": False}})
        wait_phase(kube, env, "Stopped")
        kube.patch(ws_path(env.namespace, "ws"), {"spec": {"running": True}})
        wait_phase(kube, env, "Running")
        assert _sts_claim(kube, env) == f"ds.{name}.r2"
        assert _copied_path(kube, env, name, 2) == str(tmp_path / "r2")
        assert _copied_path(kube, env, name, 1) == str(tmp_path / "r1")
    finally:
        for obj in reversed(made):
            kube.delete_quietly(obj)
        kube.delete_quietly(ds)
