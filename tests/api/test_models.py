from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from spe_api import (KINDS, DataPermit, DataPermitPhase, Dataset, OutputReview, Tool, ToolPhase, Workspace,
                     permit_namespace)

from .helpers import DELETE, edit, example

pytestmark = pytest.mark.api

NOW = datetime(2026, 11, 21, tzinfo=timezone.utc)


@pytest.mark.parametrize("key, model", [
    ("prostate-mr", Dataset), ("lung-ct", Dataset), ("tool", Tool), ("permit", DataPermit),
    ("workspace", Workspace), ("review", OutputReview),
])
def test_examples_parse_and_round_trip(key, model):
    manifest = example(key)
    obj = model.from_manifest(manifest)
    again = model.from_manifest(obj.to_manifest())
    assert again == obj
    assert obj.to_manifest()["metadata"]["name"] == manifest["metadata"]["name"]


def test_from_manifest_accepts_mappings_and_fills_defaults():
    from types import MappingProxyType
    body = MappingProxyType(edit(example("workspace"), spec__resources=DELETE, spec__storage=DELETE))
    ws = Workspace.from_manifest(body)
    assert (ws.spec.resources.cpu, ws.spec.resources.memory, ws.spec.storage.size) == ("2", "8Gi", "10Gi")
    assert ws.gpu_count == 0 and ws.gpu_model is None
    assert ws.status.phase is None and ws.status.conditions == []


def test_snake_case_in_python_camel_case_on_the_wire():
    permit = DataPermit.from_manifest(example("permit"))
    assert permit.spec.permit_id == "HDAB-NL-2026-0042"
    assert permit.spec.export_policy.disclosure.dominance.share == 0.9
    wire = permit.to_manifest()["spec"]
    assert wire["exportPolicy"]["disclosure"]["minCellCount"] == 10 and "permitId" in wire


def test_integer_quantities_become_strings():
    ws = Workspace.from_manifest(edit(example("workspace"), spec__resources__cpu=4))
    assert ws.spec.resources.cpu == "4"


@pytest.mark.parametrize("changes", [
    {"spec__resources__cpu": "four"},
    {"spec__resources__memory": "-1Gi"},
    {"spec__permit": "Not_A_Name"},
    {"spec__members": []},
    {"spec__tool": DELETE},
])
def test_model_refuses_malformed(changes):
    with pytest.raises(ValidationError):
        Workspace.from_manifest(edit(example("workspace"), **changes))


def test_tool_image_must_be_pinned_by_digest():
    with pytest.raises(ValidationError):
        Tool.from_manifest(edit(example("tool"), spec__image="ghcr.io/ehds-spe/notebook-monai:2026.11"))


def test_tool_image_pinned_to_the_placeholder_digest_is_refused():
    with pytest.raises(ValidationError, match="all-zero placeholder digest"):
        Tool.from_manifest(edit(example("tool"), spec__image="ghcr.io/ehds-spe/notebook@sha256:" + "0" * 64))
    almost_zero = "ghcr.io/ehds-spe/notebook@sha256:" + "0" * 63 + "1"
    assert Tool.from_manifest(edit(example("tool"), spec__image=almost_zero)).spec.image == almost_zero


@pytest.mark.parametrize("changes, phase", [
    ({}, DataPermitPhase.ACTIVE),
    ({"spec__notBefore": "2027-01-01T00:00:00Z"}, DataPermitPhase.PENDING),
    ({"spec__notAfter": "2026-11-20T00:00:00Z", "spec__notBefore": DELETE}, DataPermitPhase.EXPIRED),
    ({"spec__suspended": True, "spec__suspensionReason": "audit"}, DataPermitPhase.SUSPENDED),
    ({"spec__revoked": True, "spec__revocationReason": "breach", "spec__suspended": True}, DataPermitPhase.REVOKED),
])
def test_permit_phase_from_spec(changes, phase):
    assert DataPermit.from_manifest(edit(example("permit"), **changes)).phase_at(NOW) == phase


def test_permit_helpers():
    permit = DataPermit.from_manifest(example("permit"))
    assert permit.target_namespace == permit_namespace("prostate-lung-ai") == "spe-prostate-lung-ai"
    assert permit.member("m.rossi@unipi.it").role == "researcher"
    assert permit.member("nobody@example.org") is None


@pytest.mark.parametrize("changes, phase", [
    ({}, ToolPhase.APPROVED),
    ({"spec__approval": DELETE}, ToolPhase.PENDING),
    ({"spec__approval__scan__critical": 2}, ToolPhase.PENDING),
    ({"spec__revoked": True, "spec__revocationReason": "CVE-2026-1234"}, ToolPhase.REVOKED),
])
def test_tool_effective_phase(changes, phase):
    tool = Tool.from_manifest(edit(example("tool"), **changes))
    assert tool.effective_phase()[0] == phase
    assert tool.approved == (phase == ToolPhase.APPROVED)


def test_status_patch_shape():
    ws = Workspace.from_manifest(example("workspace"))
    ws.status.phase = "Running"
    ws.status.url = "http://segmentation.spe-prostate-lung-ai.svc:8888/"
    assert ws.status.to_patch() == {"status": {"conditions": [], "phase": "Running",
                                               "url": "http://segmentation.spe-prostate-lung-ai.svc:8888/"}}


def test_every_kind_declares_its_crd_names():
    assert {k.KIND for k in KINDS} == {"DataPermit", "Dataset", "Workspace", "OutputReview", "Tool"}
    assert {s for k in KINDS for s in k.SHORT_NAMES} == {"dp", "ds", "dset", "ws", "or", "tool"}
