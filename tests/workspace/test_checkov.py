"""The notebook server's manifests pass checkov's Kubernetes checks (skips listed with reasons)."""

from __future__ import annotations

import pytest

from spe_api import Tool, Workspace
from spe_operator.settings import SpeSettings
from spe_operator.workspaces import datasets, desired, volumes

from . import factories as f
from .checkov import NETWORK_POLICY_SKIP, SKIPS, clean, describe, run_checkov
from .helpers import wait_for, ws_path

pytestmark = pytest.mark.workspace

SETTINGS = SpeSettings(encrypted_storage_classes=["spe-encrypted"], ingest_image="localhost/spe-ingest@sha256:" + "a" * 64,
                       dataset_public_key="-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n")
OWNER = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "w1", "uid": "u1"}}


def test_rendered_statefulset_passes_checkov(tmp_path):
    ws = Workspace.from_manifest(f.workspace("w1", "spe-p1", "p1", gpus={"count": 1, "model": "NVIDIA-L40S"},
                                             datasets=["prostate-mr"], running=True))
    claims, _ = volumes.build_volume_claims(ws, SETTINGS)
    mount = datasets.DatasetMount("prostate-mr", {"spec": {"capacity": {"storage": "1Gi"},
                                                           "csi": {"driver": "x", "volumeHandle": "h"}}})
    d = desired.desired_children(OWNER, ws, tool=Tool.from_manifest(f.tool()), mounts=(mount,), claims=claims,
                                 permit_body=None, settings=SETTINGS, replicas=1)
    result = run_checkov([d.statefulset, d.service], tmp_path, {**SKIPS, **NETWORK_POLICY_SKIP})
    assert not result["failed"], describe(result["failed"])
    assert result["passed"] > 40, result["summary"]


def test_live_pod_with_its_namespace_policies_passes_checkov(kube, ws_env, tmp_path):
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True, gpus={"count": 1, "model": "NVIDIA-A30"}))
    pod = wait_for("the server's pod", lambda: kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0"))
    sts = kube.get_or_none(f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets/ws")
    # The permit's policies must be there: checkov then judges the pod with them, never without.
    policies = wait_for("the permit namespace's NetworkPolicies", lambda: kube.items(
        f"/apis/networking.k8s.io/v1/namespaces/{env.namespace}/networkpolicies"))
    rendered = [clean(sts), clean(pod), *[dict(clean(p), apiVersion="networking.k8s.io/v1", kind="NetworkPolicy")
                                           for p in policies]]
    result = run_checkov(rendered, tmp_path, dict(SKIPS))
    assert not result["failed"], describe(result["failed"])
    assert kube.get_or_none(ws_path(env.namespace, "ws"))
