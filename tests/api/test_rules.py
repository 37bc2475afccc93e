"""The admission rules as pure functions: table-driven, no cluster."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from spe_api import DataPermit, OutputReview, Reason, Tool, Workspace
from spe_operator.admission import rules

from .helpers import DELETE, edit, example

pytestmark = pytest.mark.api

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
NS = "spe-prostate-lung-ai"
GATEWAY = "system:serviceaccount:spe-system:spe-egress"


def ws(name="segmentation", **changes) -> Workspace:
    return Workspace.from_manifest(edit(example("workspace"), metadata__name=name, **changes))


def permit(**changes) -> DataPermit:
    return DataPermit.from_manifest(edit(example("permit"), **changes))


def tool(**changes) -> Tool:
    return Tool.from_manifest(edit(example("tool"), **changes))


def check(workspace: Workspace, *, old=None, the_permit="default", the_tool="default", others=(), namespace=NS):
    return rules.check_workspace(
        workspace, old=old, permit=permit() if the_permit == "default" else the_permit,
        expected_namespace=namespace, tool=tool() if the_tool == "default" else the_tool,
        available_tools=["jupyterlab-monai"], others=list(others), now=NOW)


def test_example_workspace_passes():
    assert check(ws()) is None


# Each row: the workspace (and context) and the words its refusal must contain.
CASES = [
    ("permit missing", dict(the_permit=None), Reason.PERMIT_NOT_FOUND,
     ["spec.permit", "'prostate-lung-ai'", "does not exist"]),
    ("wrong namespace", dict(workspace=ws(metadata__namespace="default")), Reason.WRONG_NAMESPACE,
     ["metadata.namespace", "'default'", "'spe-prostate-lung-ai'"]),
    ("permit expired", dict(the_permit=permit(spec__notAfter="2026-11-01T00:00:00Z")), Reason.PERMIT_NOT_ACTIVE,
     ["spec.permit", "Expired", "notAfter"]),
    ("permit suspended", dict(the_permit=permit(spec__suspended=True, spec__suspensionReason="security audit")),
     Reason.PERMIT_NOT_ACTIVE, ["Suspended", "security audit"]),
    ("permit revoked", dict(the_permit=permit(spec__revoked=True, spec__revocationReason="breach of terms")),
     Reason.PERMIT_NOT_ACTIVE, ["Revoked", "breach of terms"]),
    ("permit not yet valid", dict(the_permit=permit(spec__notBefore="2027-01-01T00:00:00Z")),
     Reason.PERMIT_NOT_ACTIVE, ["Pending", "notBefore"]),
    ("member outside permit", dict(workspace=ws(spec__members=["a.jansen@radboudumc.nl", "eve@example.org"])),
     Reason.MEMBER_NOT_IN_PERMIT, ["spec.members", "'eve@example.org'", "add them to the permit"]),
    ("dataset outside permit", dict(workspace=ws(spec__datasets=["prostate-mr", "breast-mg"])),
     Reason.DATASET_NOT_IN_PERMIT, ["spec.datasets", "'breast-mg'", "prostate-mr, lung-ct"]),
    ("tool missing", dict(the_tool=None), Reason.TOOL_NOT_FOUND, ["spec.tool", "'jupyterlab-monai'", "does not exist"]),
    ("tool not approved", dict(the_tool=tool(spec__approval=DELETE)), Reason.TOOL_NOT_APPROVED,
     ["spec.tool", "Pending", "not Approved"]),
    ("tool revoked", dict(the_tool=tool(spec__revoked=True, spec__revocationReason="CVE-2026-0001")),
     Reason.TOOL_REVOKED, ["Revoked", "CVE-2026-0001"]),
    ("gpu on cpu-only tool", dict(the_tool=tool(spec__gpuCapable=False)), Reason.TOOL_NOT_GPU_CAPABLE,
     ["spec.resources.gpus", "not GPU-capable"]),
    ("gpu model not permitted", dict(workspace=ws(spec__resources__gpus__model="NVIDIA-H100")),
     Reason.GPU_MODEL_NOT_PERMITTED, ["spec.resources.gpus.model", "'NVIDIA-H100'", "NVIDIA-A30 x2, NVIDIA-L40S x1"]),
    ("too many gpus alone", dict(workspace=ws(spec__resources__gpus__count=2)), Reason.CEILING_EXCEEDED,
     ["spec.resources.gpus.count", "2 x NVIDIA-L40S", "left 1"]),
    ("gpus held by another", dict(others=[ws("other")]), Reason.CEILING_EXCEEDED,
     ["spec.resources.gpus.count", "held by its other running workspaces 1 (other)", "left 0"]),
    ("cpu over ceiling", dict(workspace=ws(spec__resources__cpu="33")), Reason.CEILING_EXCEEDED,
     ["spec.resources.cpu", "33", "ceiling 32", "left 32"]),
    ("cpu with others", dict(workspace=ws(spec__resources__gpus=DELETE, spec__resources__cpu="20"),
                            others=[ws("a", spec__resources__gpus=DELETE, spec__resources__cpu="8"),
                                    ws("b", spec__resources__gpus=DELETE, spec__resources__cpu="4500m")]),
     Reason.CEILING_EXCEEDED, ["spec.resources.cpu", "held by its other running workspaces 12.5 (a, b)", "left 19.5"]),
    ("memory over ceiling", dict(workspace=ws(spec__resources__memory="129Gi")), Reason.CEILING_EXCEEDED,
     ["spec.resources.memory", "129Gi", "ceiling 128Gi"]),
    ("storage over ceiling", dict(workspace=ws(spec__storage__size="600Gi")), Reason.CEILING_EXCEEDED,
     ["spec.storage.size", "600Gi", "ceiling 1Ti", "at most 512Gi per volume"]),
    ("too many workspaces", dict(the_permit=permit(spec__ceilings__maxWorkspaces=1),
                                 others=[ws("idle", spec__running=False, spec__resources__gpus=DELETE)]),
     Reason.WORKSPACE_LIMIT_REACHED, ["maxWorkspaces", "1"]),
]


@pytest.mark.parametrize("context, reason, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refusals(context, reason, words):
    context = dict(context)
    workspace = context.pop("workspace", ws())
    denial = check(workspace, **context)
    assert denial is not None, "expected a refusal"
    assert denial.reason == reason, denial.message
    for word in words:
        assert word in denial.message, f"{word!r} not in {denial.message!r}"


def test_stopped_others_hold_no_compute_but_storage():
    others = [ws("idle", spec__running=False)]
    assert check(ws(), others=others) is None
    assert "spec.storage.size" in check(ws(spec__storage__size="300Gi"), others=[ws("big", spec__storage__size="250Gi", spec__running=False, spec__resources__gpus=DELETE)]).message


def test_stopped_workspace_needs_no_active_permit_but_may_not_exceed_the_whole_ceiling():
    expired = permit(spec__notAfter="2026-11-01T00:00:00Z")
    old = ws()
    assert check(ws(spec__running=False), old=old, the_permit=expired) is None  # stopping is always allowed
    assert check(ws(spec__running=False, spec__idleTimeoutMinutes=30), old=old, the_permit=expired) is None
    assert check(ws(spec__running=False, spec__resources__cpu="64"), the_permit=expired) is not None  # create


def test_unchanged_spec_and_stop_only_updates_pass_even_if_the_world_changed():
    old = ws()
    assert check(ws(), old=old, the_tool=None) is None
    assert check(ws(spec__running=False), old=old, the_tool=None, the_permit=None) is None
    denial = check(ws(spec__running=False, spec__tool="other"), old=old, the_tool=None)
    assert denial is not None and denial.reason == Reason.TOOL_NOT_FOUND


def test_update_excludes_the_workspace_itself_from_holdings():
    current = ws()
    assert check(ws(spec__resources__cpu="10"), old=current, others=[current]) is None


def test_all_denials_listed_for_reconcilers():
    bad = ws(spec__members=["eve@example.org"], spec__resources__cpu="99")
    reasons = [d.reason for d in rules.workspace_denials(
        bad, old=None, permit=permit(), expected_namespace=NS, tool=None, others=[], now=NOW)]
    assert reasons == [Reason.MEMBER_NOT_IN_PERMIT, Reason.TOOL_NOT_FOUND, Reason.CEILING_EXCEEDED]


# --- OutputReview ---------------------------------------------------------------------------

def review(**changes) -> OutputReview:
    return OutputReview.from_manifest(edit(example("review"), **changes))


@pytest.mark.parametrize("user, workspace, the_permit, changes, reason, words", [
    ("kubernetes-admin", ws(), permit(), {}, Reason.NOT_GATEWAY, ["'kubernetes-admin'", GATEWAY, "spe-export"]),
    (GATEWAY, None, permit(), {}, Reason.INVALID_SPEC, ["spec.workspace", "'segmentation'", "does not exist"]),
    (GATEWAY, ws(), permit(), {"spec__requester": "l.garcia@isciii.es"}, Reason.MEMBER_NOT_IN_PERMIT,
     ["spec.requester", "'l.garcia@isciii.es'", "not a member of Workspace 'segmentation'"]),
    (GATEWAY, ws(), permit(spec__revoked=True, spec__revocationReason="x"), {}, Reason.PERMIT_NOT_ACTIVE,
     ["Revoked", "new exports are refused"]),
    (GATEWAY, ws(spec__members=["pacs-delegate@umcg.nl"]), permit(), {"spec__requester": "pacs-delegate@umcg.nl"},
     Reason.MEMBER_NOT_IN_PERMIT, ["'pacs-delegate@umcg.nl' is data-holder-delegate", "only its researchers may export"]),
    (GATEWAY, ws(), permit(spec__members=[{"subject": "m.rossi@unipi.it"}]), {}, Reason.MEMBER_NOT_IN_PERMIT,
     ["'a.jansen@radboudumc.nl' is no longer a member of DataPermit", "spec.members"]),
])
def test_output_review_refusals(user, workspace, the_permit, changes, reason, words):
    denial = rules.check_output_review(review(**changes), username=user, gateway_username=GATEWAY,
                                       workspace=workspace, permit=the_permit, now=NOW)
    assert denial is not None and denial.reason == reason
    for word in words:
        assert word in denial.message


def test_output_review_from_gateway_passes():
    assert rules.check_output_review(review(), username=GATEWAY, gateway_username=GATEWAY,
                                     workspace=ws(), permit=permit(), now=NOW) is None


# --- DataPermit -----------------------------------------------------------------------------

def test_permit_datasets_must_exist_on_create():
    denial = rules.check_data_permit(permit(), old=None, existing_datasets=["prostate-mr"])
    assert denial is not None and denial.reason == Reason.DATASET_NOT_FOUND
    assert "spec.datasets: Dataset 'lung-ct' does not exist" in denial.message
    assert rules.check_data_permit(permit(), old=None, existing_datasets=["prostate-mr", "lung-ct"]) is None


def test_permit_update_checks_only_added_datasets():
    old = permit()
    suspended = permit(spec__suspended=True, spec__suspensionReason="audit")
    assert rules.check_data_permit(suspended, old=old, existing_datasets=[]) is None
    grown = permit(spec__datasets=["prostate-mr", "lung-ct", "breast-mg"])
    assert "'breast-mg'" in rules.check_data_permit(grown, old=old, existing_datasets=["prostate-mr"]).message


def test_permit_id_is_unique():
    other = DataPermit.from_manifest(edit(example("permit"), metadata__name="older-copy"))
    denial = rules.check_data_permit(permit(), old=None, existing_datasets=["prostate-mr", "lung-ct"],
                                     other_permits=[other])
    assert denial is not None and "spec.permitId: 'HDAB-NL-2026-0042' is already used by DataPermit 'older-copy'" in denial.message


def test_a_permit_being_deleted_frees_its_id():
    leaving = DataPermit.from_manifest(edit(example("permit"), metadata__name="leaving",
                                            metadata__deletionTimestamp="2026-11-21T10:00:00Z"))
    assert rules.check_data_permit(permit(), old=None, existing_datasets=["prostate-mr", "lung-ct"],
                                   other_permits=[leaving]) is None


def test_a_workspace_member_is_the_permits_whatever_the_case_of_the_name():
    permit = DataPermit.from_manifest(example("permit"))
    first = permit.spec.members[0].subject
    ws = Workspace.from_manifest(edit(example("workspace"), spec__members=[first.upper()],
                                      spec__datasets=list(permit.spec.datasets)[:1]))
    assert rules.membership_denial(ws, permit) is None
    assert permit.member(first.upper()) is not None
    stranger = Workspace.from_manifest(edit(example("workspace"), spec__members=["someone-else"],
                                            spec__datasets=list(permit.spec.datasets)[:1]))
    assert rules.membership_denial(stranger, permit).reason == "MemberNotInPermit"
