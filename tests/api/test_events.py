"""The one Event builder every component posts through (spe_kube.events)."""

from datetime import datetime, timezone

import pytest

from spe_kube.events import CLUSTER_EVENT_NAMESPACE, MAX_MESSAGE, WARNING, build_event, object_ref

pytestmark = pytest.mark.api
NOW = datetime(2026, 12, 2, 1, 2, 3, tzinfo=timezone.utc)


def test_a_namespaced_objects_event_lives_in_its_namespace_and_names_it_exactly():
    body = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "ws-1", "namespace": "spe-lung", "uid": "u-1", "resourceVersion": "7",
                         "labels": {"a": "b"}}, "spec": {"running": True}}
    event = build_event(body, type_=WARNING, reason="Blocked", message="x" * (MAX_MESSAGE + 10),
                        component="spe-operator", now=NOW)
    assert event["metadata"] == {"generateName": "ws-1.", "namespace": "spe-lung"}
    assert event["involvedObject"] == {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace", "name": "ws-1",
                                       "namespace": "spe-lung", "uid": "u-1", "resourceVersion": "7"}
    assert event["type"] == "Warning" and event["reason"] == "Blocked"
    assert len(event["message"]) == MAX_MESSAGE
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-12-02T01:02:03Z"
    assert event["source"] == {"component": "spe-operator"} and event["reportingComponent"] == "spe-operator"


def test_a_cluster_scoped_objects_event_goes_where_kubectl_describe_finds_it():
    ref = {"apiVersion": "v1", "kind": "Node", "name": "gpu-node-1"}
    event = build_event(ref, type_="Normal", reason="GpuMeasured", message="ok", component="spe-gpu-agent",
                        now=NOW, host="gpu-node-1")
    assert event["metadata"]["namespace"] == CLUSTER_EVENT_NAMESPACE
    assert event["involvedObject"] == ref
    assert event["source"] == {"component": "spe-gpu-agent", "host": "gpu-node-1"}
    assert object_ref(ref) == ref
