"""Tool catalogue: write each Tool's phase and ToolApproved condition from its spec.

The webhook and the workspace reconciler decide from the spec (``Tool.effective_phase``), so a
Tool is usable the moment it is approved; this handler makes that visible in ``kubectl get
tool`` and records approvals and revocations in the audit trail and as Events.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import kopf

from spe_api import GROUP, VERSION, ConditionType, Message, Tool, ToolPhase, set_condition
from spe_kube import kind_for
from spe_kube.events import NORMAL, WARNING, post_event

from ..registry import REGISTRY

TOOL = kind_for(f"{GROUP}/{VERSION}", "Tool")
AUDIT_ACTS = {ToolPhase.APPROVED: "tool.approved", ToolPhase.REVOKED: "tool.revoked"}


def tool_status(tool: Tool, now: datetime) -> tuple[ToolPhase, dict[str, Any]]:
    """The status a Tool should carry (pure): its phase and the ToolApproved condition."""
    phase, reason, message = tool.effective_phase()
    conditions = set_condition(tool.status.conditions, ConditionType.TOOL_APPROVED, phase == ToolPhase.APPROVED,
                               reason, message, tool.generation, now)
    status = tool.status.model_copy(update={"phase": phase, "conditions": conditions,
                                            "observed_generation": tool.generation})
    return phase, status.to_patch()


def _unchanged(tool: Tool, patch: dict[str, Any]) -> bool:
    current = tool.status.condition(ConditionType.TOOL_APPROVED)
    wanted = patch["status"]["conditions"][-1]
    return (current is not None and tool.status.phase == patch["status"]["phase"]
            and current.status == wanted["status"] and current.message == wanted["message"]
            and tool.status.observed_generation == tool.generation)


# An event handler (level-based, no Kopf state on the object): every event recomputes the
# status and patches only when it differs, so the status write's own event ends the loop.
@kopf.on.event(GROUP, VERSION, "tools", registry=REGISTRY)
async def reconcile_tool(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:  # noqa: A002
    if type == "DELETED":
        return
    tool = Tool.from_manifest(body)
    before = tool.status.phase
    phase, patch = tool_status(tool, datetime.now(timezone.utc))
    if _unchanged(tool, patch):
        return
    await memo.kube.merge_patch(TOOL, tool.name, patch, subresource="status")
    if phase == before:
        return
    message = patch["status"]["conditions"][-1]["message"] if phase != ToolPhase.APPROVED else \
        Message.TOOL_APPROVED_EVENT.format(tool=tool.name, image=tool.spec.image)
    await post_event(memo.kube, body, type_=WARNING if phase == ToolPhase.REVOKED else NORMAL,
                     reason=f"Tool{phase.value}", message=message)
    act = AUDIT_ACTS.get(phase)
    audit = memo.get("audit")
    if act and audit is not None:
        await audit.record(act, target=f"tool/{tool.name}", details={"image": tool.spec.image})
