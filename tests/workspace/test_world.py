"""What the Workspace controller keeps of a watched body: everything it reads, not the API
server's field-manager bookkeeping (the bulk of the operator's memory at 5,000 workspaces)."""

from __future__ import annotations

import copy
import json

import pytest

from spe_kube.events import object_ref
from spe_operator.children import owner_reference
from spe_operator.workspaces.world import World, kept

pytestmark = pytest.mark.workspace

BODY = {
    "apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace",
    "metadata": {"name": "w1", "namespace": "spe-p1", "uid": "u1", "resourceVersion": "7", "generation": 1,
                 "labels": {"a": "b"},
                 "managedFields": [{"manager": "spe-operator", "operation": "Apply",
                                    "fieldsV1": {"f:status": {"f:conditions": {}}}}]},
    "spec": {"permit": "p1", "tool": "jupyterlab", "datasets": ["ds1"], "running": True, "members": ["rita"]},
    "status": {"phase": "Pending"},
}


def test_kept_drops_only_the_managed_fields_and_leaves_the_event_body_alone():
    original = copy.deepcopy(BODY)
    data = kept(BODY)
    assert BODY == original  # the watch's body is not touched
    assert "managedFields" not in data["metadata"]
    expected = copy.deepcopy(BODY)
    del expected["metadata"]["managedFields"]
    assert data == expected


def test_kept_bodies_share_their_key_strings():
    # two events parsed separately carry separate copies of the same keys
    one, two = json.loads(json.dumps(BODY)), json.loads(json.dumps(BODY))
    a, b = kept(one), kept(two)
    key_a = next(k for k in a["spec"] if k == "datasets")
    key_b = next(k for k in b["spec"] if k == "datasets")
    assert key_a is key_b


def test_the_world_keeps_the_model_and_only_the_identity_of_the_body():
    world = World()
    assert world.put_workspace(copy.deepcopy(BODY))
    entry = world.workspaces[("spe-p1", "w1")]
    assert entry.body == {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace",
                          "metadata": {"name": "w1", "namespace": "spe-p1", "uid": "u1", "resourceVersion": "7",
                                       "generation": 1}}
    assert entry.model is not None and entry.model.spec.permit == "p1" and entry.model.metadata.labels == {"a": "b"}
    # what the body is used for: owner references of the children, Events
    assert owner_reference(entry.body)["uid"] == "u1"
    assert object_ref(entry.body) == {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace", "name": "w1",
                                      "namespace": "spe-p1", "uid": "u1", "resourceVersion": "7"}


def test_an_older_event_does_not_replace_a_newer_body():
    world = World()
    newer_body = copy.deepcopy(BODY)
    newer_body["metadata"]["resourceVersion"] = "9"
    newer_body["status"]["phase"] = "Running"
    world.put_workspace(newer_body)
    assert not world.put_workspace(copy.deepcopy(BODY))      # resourceVersion 7 came late
    assert world.workspaces[("spe-p1", "w1")].model.status.phase == "Running"


def test_repeated_short_values_are_shared_between_workspaces():
    one, two = json.loads(json.dumps(BODY)), json.loads(json.dumps(BODY))
    assert one["spec"]["tool"] is not two["spec"]["tool"]
    assert kept(one)["spec"]["tool"] is kept(two)["spec"]["tool"]


def test_kept_models_share_their_field_sets_and_a_copy_with_an_update_leaves_them_alone():
    world = World()
    two = copy.deepcopy(BODY)
    two["metadata"].update(name="w2", uid="u2")
    world.put_workspace(copy.deepcopy(BODY))
    world.put_workspace(two)
    a, b = (world.workspaces[("spe-p1", n)].model for n in ("w1", "w2"))
    assert a.spec.__pydantic_fields_set__ is b.spec.__pydantic_fields_set__
    before = set(a.spec.__pydantic_fields_set__)
    changed = a.spec.model_copy(update={"display_name": "renamed"})
    assert "display_name" in changed.model_fields_set
    assert a.spec.model_fields_set == before == b.spec.model_fields_set
