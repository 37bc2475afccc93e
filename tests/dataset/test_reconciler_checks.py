"""The reconciler's checks before any Job runs (the session operator, any node): a class not
known to encrypt, a source claim outside the operator's namespace, an option spe-ingest does
not implement, and an operator without an ingest image. Each says what to fix."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.fixtures.operator import _SESSION, running_operator
from tests.fixtures.operator import test_settings as suite_settings

from .conftest import DATASETS, OPERATOR_NS, wait_for

pytestmark = pytest.mark.dataset


def _dataset(name: str, **spec) -> dict:
    body = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name},
            "spec": {"source": {"claimName": "nowhere"},
                     "pseudonymisation": {"keySecret": {"name": "k"}, "site": "s"},
                     "storage": {"size": "1Gi", "storageClassName": "spe-encrypted"},
                     "signingKeySecret": {"name": "s"}}}
    body["spec"].update(spec)
    return body


@pytest.fixture(scope="module")
def checks_operator(cluster, spe_crds, operator_kubeconfig):
    """The operator with its Dataset reconciler (and no ingest image), alone for the module."""
    paused = [s for s in _SESSION if s.running]
    for session in paused:
        session.stop()
    try:
        with running_operator(suite_settings(kubeconfig=operator_kubeconfig, dataset_reconciler=True,
                                             ingest_image=None)) as settings:
            yield settings
    finally:
        for session in paused:
            session.start()


@pytest.fixture
def apply_dataset(cluster, spe_crds, checks_operator):
    made = []

    def apply(body):
        made.append(body["metadata"]["name"])
        cluster.kubectl("apply", "-f", "-", input=json.dumps(body), check=True)
    yield apply
    for name in made:
        cluster.kubectl("delete", "dataset", name, "--ignore-not-found", "--wait=false")


def _status(cluster, name: str, phase: str) -> dict:
    api = cluster.api()
    return wait_for(f"dataset {name} {phase}", lambda: (lambda d: d["status"] if d and (d.get("status") or {}).get(
        "phase") == phase else None)(api.get_or_none(f"{DATASETS}/{name}")), timeout=60)


@pytest.mark.parametrize("spec,phase,says", [
    ({"storage": {"size": "1Gi", "storageClassName": "plain-disks"}}, "Failed",
     "Storage class 'plain-disks' is not one the operator knows to encrypt"),
    ({"source": {"claimName": "x", "claimNamespace": "elsewhere"}}, "Failed", "put the source claim in 'spe-system'"),
    ({"anonymisation": {"options": ["clean-recognizable-visual-features"]}}, "Failed",
     "clean-recognizable-visual-features, which spe-ingest does not implement"),
    ({}, "Pending", "The operator has no ingest image"),
])
def test_checks_before_the_ingest(cluster, apply_dataset, spec, phase, says):
    name = f"chk-{secrets.token_hex(3)}"
    apply_dataset(_dataset(name, **spec))
    st = _status(cluster, name, phase)
    assert says in st["message"], st["message"]
    assert st["observedGeneration"] == 1
    claims = cluster.api().get(f"/api/v1/namespaces/{OPERATOR_NS}/persistentvolumeclaims"
                               f"?labelSelector=spe.ehds.io/dataset={name}")["items"]
    assert claims == []
