"""The whole pipeline on the real node, with nothing made by hand in between: a Dataset applied
by a data holder → the reconciler's claim and ingest Job → Ready → a workspace of a permit naming
it verifies the volume the reconciler produced and mounts its data/ read-only at /data/<name>."""

from __future__ import annotations

import pytest

from spe_api.datasetvolume import LABEL_STATE, STATE_READY
from tests.fixtures.datasetvolumes import SIGNING_KEY_PEM
from tests.node.conftest import exec_in
from tests.node.envs import NodeEnv
from tests.workspace.helpers import Kube, condition

from spe_dev.sourcedata import SourceSpec

pytestmark = [pytest.mark.dataset, pytest.mark.node]


def test_a_workspace_mounts_what_the_reconciler_ingested(dataset_env, cluster, real_node, tmp_path_factory):
    env = dataset_env
    # The site's signing key: the workspaces verify every dataset against its public half.
    env.signing_pem = SIGNING_KEY_PEM
    spec = SourceSpec(patients=6, per_patient=2, classes=2)
    planted = env.source_claim("src-e2e", spec, path="/export")
    keys = env.keys("e2e")
    env.apply(env.dataset_body("ct-e2e", "src-e2e", keys, source={"claimName": "src-e2e", "path": "/export"},
                               kAnonymity={"threshold": 3}))
    ds = env.wait_phase("ct-e2e", ("Ready", "Failed", "Quarantined"))
    assert ds["status"]["phase"] == "Ready", ds["status"]
    claim = env.claim(ds["status"]["claimName"])
    assert claim["metadata"]["labels"][LABEL_STATE] == STATE_READY

    node = NodeEnv(Kube(cluster.api()), real_node, tmp_path_factory)
    try:
        ns = node.permit(datasets=["ct-e2e"])
        node.workspace(ns, datasets=["ct-e2e"])
        ws = node.wait_running(ns)
        verified = condition(ws, "DatasetsVerified")
        assert verified["status"] == "True" and "ct-e2e" in verified["message"], verified
        # The namespace's read-only copy points at the volume the reconciler's claim is bound to.
        pvc = next(c for c in cluster.api().get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")["items"]
                   if c["metadata"].get("labels", {}).get("spe.ehds.io/dataset") == "ct-e2e")
        copy = cluster.api().get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        source = cluster.api().get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
        kind = "hostPath" if "hostPath" in source["spec"] else "local"
        assert copy["spec"][kind]["path"] == source["spec"][kind]["path"]

        def sh(script: str) -> str:
            return exec_in(cluster, ns, "ws-0", "sh", "-c", script).stdout

        data = "/data/ct-e2e"
        assert sh(f"find {data} -type f -name '*.dcm' | wc -l").strip() == str(ds["status"]["counts"]["accepted"])
        top = sh(f"ls -a {data}").split()
        assert not {"quarantine", "manifest.json", "report.json", ".spe-ingest"} & set(top), top
        assert sh(f"touch {data}/x 2>&1; true").count("Read-only file system") == 1
        surname = planted[0].split("^")[0]
        assert sh(f"grep -rl -e '{surname}' {data}; echo rc=$?").strip() == "rc=1"
    finally:
        node.cleanup()
