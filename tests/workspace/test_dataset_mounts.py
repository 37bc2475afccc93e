"""Issue #12, items 2 and 3 (workspace side), pure: which ingest claim a workspace mounts (by
labels and owner, never by Dataset.status), only data/ in the notebook, and the verifying init
container per dataset, whose failure becomes a condition naming the dataset and the file."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from spe_api import Dataset, Tool, Workspace
from spe_api import datasetvolume as dv
from spe_operator.settings import SpeSettings
from spe_operator.workspaces import datasets, statefulset
from spe_operator.workspaces.status import PodView, verify_problem

from . import factories as f

pytestmark = pytest.mark.workspace

NS = "spe-system"
KEY = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"
SETTINGS = SpeSettings(encrypted_storage_classes=["spe-encrypted"], default_storage_class="spe-encrypted",
                       ingest_image="localhost/spe-ingest@sha256:" + "b" * 64, dataset_public_key=KEY)


def _dataset(uid: str = "uid-1") -> Dataset:
    body = f.dataset("prostate-mr")
    body["metadata"]["uid"] = uid
    body["status"] = {"phase": "Ready", "volumeName": "pv-chosen-by-status", "claimName": "chosen-by-status"}
    return Dataset.from_manifest(body)


def _claim(revision: int, state: str = dv.STATE_READY, *, uid: str = "uid-1", namespace: str = NS,
           dataset: str = "prostate-mr", bound: bool = True) -> dict:
    return {"metadata": {"name": dv.dataset_claim_name(dataset, revision), "namespace": namespace,
                         "uid": f"c{revision}", "resourceVersion": "1",
                         "labels": {dv.LABEL_DATASET: dataset, dv.LABEL_REVISION: str(revision), dv.LABEL_STATE: state},
                         "ownerReferences": [{"kind": "Dataset", "name": dataset, "uid": uid}]},
            "spec": {"volumeName": f"pv-r{revision}" if bound else None},
            "status": {"phase": "Bound" if bound else "Pending"}}


def _chosen(claims) -> str | None:
    src = datasets.select_dataset_claim(_dataset(), claims, NS)
    return src.claim["metadata"]["name"] if src.claim else None


@pytest.mark.parametrize("claims, chosen", [
    ([_claim(1), _claim(2)], "dataset-prostate-mr-r2"),                      # newest ready revision
    ([_claim(1), _claim(2, dv.STATE_INGESTING)], "dataset-prostate-mr-r1"),   # not one still ingesting
    ([_claim(1), _claim(3, dv.STATE_FAILED)], "dataset-prostate-mr-r1"),      # nor a failed one
    ([_claim(1), _claim(2, uid="other-dataset")], "dataset-prostate-mr-r1"),  # nor one another Dataset owns
    ([_claim(1), _claim(2, namespace="spe-p1")], "dataset-prostate-mr-r1"),   # nor one outside the operator's namespace
    ([_claim(2, uid="old-dataset-of-that-name")], None),                      # a re-created Dataset owns none of the old
    ([_claim(1, dv.STATE_INGESTING)], None),
    ([], None),
])
def test_the_claim_comes_from_labels_and_owner_never_from_status(claims, chosen):
    assert _chosen(claims) == chosen


def test_a_running_servers_revision_is_kept_while_it_is_ready():
    src = datasets.select_dataset_claim(_dataset(), [_claim(1), _claim(2)], NS, keep=1)
    assert src.claim["metadata"]["name"] == "dataset-prostate-mr-r1" and src.revision == 1
    src = datasets.select_dataset_claim(_dataset(), [_claim(1, dv.STATE_FAILED), _claim(2)], NS, keep=1)
    assert src.revision == 2  # no longer ready: the newest


def test_why_there_is_no_volume_is_said():
    src = datasets.select_dataset_claim(_dataset(), [_claim(1, dv.STATE_INGESTING)], NS)
    assert src.claim is None and "ingesting" in src.detail and NS in src.detail
    src = datasets.select_dataset_claim(_dataset(), [_claim(1, bound=False)], NS)
    assert src.claim is None and "not bound" in src.detail


def test_the_volume_must_be_bound_to_that_very_claim():
    claim = _claim(1)
    good = {"spec": {"claimRef": {"namespace": NS, "name": claim["metadata"]["name"], "uid": "c1"}}}
    assert datasets.volume_bound_to(good, claim) is None
    stolen = {"spec": {"claimRef": {"namespace": NS, "name": claim["metadata"]["name"], "uid": "someone-else"}}}
    assert "not bound" in datasets.volume_bound_to(stolen, claim)
    assert "not found" in datasets.volume_bound_to(None, claim)


def test_no_verification_no_mount():
    source = {"metadata": {"name": "pv-r1"}, "spec": {"csi": {"driver": "x", "volumeHandle": "h"}}}
    verdict = datasets.evaluate_datasets(["prostate-mr"], {"prostate-mr": _dataset()}, {"prostate-mr": source},
                                         verifier_missing=("public key", "dataset_public_key / SPE_DATASET_PUBLIC_KEY"))
    assert not verdict.ok and verdict.reason == "DatasetVerificationNotConfigured"
    assert "SPE_DATASET_PUBLIC_KEY" in verdict.message and not verdict.mounts


def _pod_spec():
    ws = Workspace.from_manifest(f.workspace("w1", "spe-p1", "p1", datasets=["prostate-mr"], running=True))
    mount = datasets.DatasetMount("prostate-mr", {"spec": {"csi": {"driver": "x", "volumeHandle": "h"}}}, 2)
    sts = statefulset.build_statefulset(ws, Tool.from_manifest(f.tool()), (mount,), SETTINGS, replicas=1)
    return sts["spec"]["template"]


def test_only_data_is_mounted_into_the_notebook():
    template = _pod_spec()
    (nb,) = template["spec"]["containers"]
    (m,) = [m for m in nb["volumeMounts"] if m["name"] == "ds-prostate-mr"]
    assert m == {"name": "ds-prostate-mr", "mountPath": "/data/prostate-mr", "subPath": "data", "readOnly": True}
    assert not any(m.get("mountPath") == "/dataset" for m in nb["volumeMounts"])


def test_each_dataset_is_verified_by_an_init_container_with_the_sites_key():
    template = _pod_spec()
    spec = template["spec"]
    (init,) = spec["initContainers"]
    assert init["name"] == "verify-prostate-mr" and init["image"] == SETTINGS.ingest_image
    assert init["command"] == ["spe-ingest", "verify", "/dataset", "--public-key", "/run/spe/dataset-key/signing.pub"]
    mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert mounts["ds-prostate-mr"] == {"name": "ds-prostate-mr", "mountPath": "/dataset", "readOnly": True}
    assert mounts["dataset-public-key"]["readOnly"] is True
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
    sc = init["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert init["resources"] == {k: v for k, v in spec["containers"][0]["resources"].items()}
    assert template["metadata"]["annotations"]["spe.ehds.io/dataset-public-key"] == KEY
    (key_volume,) = [v for v in spec["volumes"] if v["name"] == "dataset-public-key"]
    (item,) = key_volume["downwardAPI"]["items"]
    assert item["fieldRef"]["fieldPath"] == "metadata.annotations['spe.ehds.io/dataset-public-key']"


def _pod(init_status: dict) -> dict:
    return {"metadata": {"name": "w1-0"}, "spec": {"nodeName": "n1"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                       "initContainerStatuses": [init_status]}}


TAMPERED = ("spe-ingest: verify: content differs: data/PAT1/ST1/SE1/IM1.dcm\n"
            "spe-ingest: verify: not in manifest: data/extra.txt\n")


def test_a_failed_verification_names_the_dataset_and_the_file():
    crashed = {"name": "verify-prostate-mr", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
               "lastState": {"terminated": {"exitCode": 4, "message": TAMPERED}}}
    view = PodView.from_pod(_pod(crashed))
    assert view.verify_failure == ("prostate-mr", "content differs: data/PAT1/ST1/SE1/IM1.dcm; "
                                                  "not in manifest: data/extra.txt")
    ok = {"name": "verify-prostate-mr", "state": {"terminated": {"exitCode": 0, "message": "intact"}}}
    view = PodView.from_pod(_pod(ok))
    assert view.verify_failure is None and view.verified == ("prostate-mr",)


def test_a_long_verification_message_is_kept_short():
    many = "".join(f"spe-ingest: verify: content differs: data/f{i}.dcm\n" for i in range(50))
    text = verify_problem(many, 4)
    assert text.startswith("content differs: data/f0.dcm") and "(and 47 more)" in text and len(text) <= 400
    assert verify_problem("", 1) == "spe-ingest verify exited with 1"


def test_the_workspace_is_blocked_with_a_condition_naming_dataset_and_file():
    from spe_operator.workspaces import checks
    from spe_operator.workspaces.status import StatusInputs, build_status
    ws = Workspace.from_manifest(f.workspace("w1", "spe-p1", "p1", datasets=["prostate-mr"], running=True))
    crashed = {"name": "verify-prostate-mr", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
               "lastState": {"terminated": {"exitCode": 4, "message": TAMPERED}}}
    ok = checks.Gate("x", True, "Ok", "ok")
    gates = checks.Gates(permit=ok, tool=ok, datasets=ok, volumes=ok, ceilings=ok, isolation=ok)
    new = build_status(StatusInputs(ws=ws, gates=gates, pod=PodView.from_pod(_pod(crashed)), url="http://x",
                                    now=datetime.now(timezone.utc)))
    assert new.phase.value == "Blocked"
    cond = next(c for c in new.conditions if c.type == "DatasetsVerified")
    assert cond.status.value == "False" and cond.reason == "DatasetVerificationFailed"
    assert "'prostate-mr'" in cond.message and "data/PAT1/ST1/SE1/IM1.dcm" in cond.message
    assert "prostate-mr" in new.message and "IM1.dcm" in new.message
