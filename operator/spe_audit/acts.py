"""The names of the acts the audit trail records, and of their outcomes.

Components pass these constants, never free-typed strings, so that an auditor can
rely on one vocabulary across the operator, the hub and the egress gateway. The
list, with who records each act and what goes into ``target`` and ``details``, is
in this package's README.
"""

from __future__ import annotations

import enum
import re


class Act(str, enum.Enum):
    """Every access-relevant act. The value is what the record's ``action`` holds."""

    # DataPermit lifecycle (recorded by the operator)
    PERMIT_ISSUED = "permit.issued"
    PERMIT_CHANGED = "permit.changed"
    PERMIT_SUSPENDED = "permit.suspended"
    PERMIT_REVOKED = "permit.revoked"
    PERMIT_EXPIRED = "permit.expired"
    # Workspaces and data access (operator)
    WORKSPACE_STARTED = "workspace.started"
    WORKSPACE_STOPPED = "workspace.stopped"
    DATASET_MOUNTED = "dataset.mounted"
    DATASET_INGESTED = "dataset.ingested"
    # Export review (egress gateway)
    EXPORT_REQUESTED = "export.requested"
    EXPORT_CHECKED = "export.checked"
    EXPORT_VOTED = "export.voted"
    EXPORT_APPROVED = "export.approved"
    EXPORT_REJECTED = "export.rejected"
    EXPORT_RELEASED = "export.released"
    EXPORT_DOWNLOADED = "export.downloaded"
    # Tool catalogue (operator)
    TOOL_APPROVED = "tool.approved"
    TOOL_REVOKED = "tool.revoked"
    # The trail itself
    AUDIT_CHECKPOINT = "audit.checkpoint"
    AUDIT_MANUAL = "audit.manual"

    def __str__(self) -> str:  # so f-strings and logs show the wire name
        return self.value


class Outcome(str, enum.Enum):
    """What came of the act."""

    SUCCESS = "success"   # the act happened
    DENIED = "denied"     # a rule refused it (expired permit, missing approval, ...)
    FAILURE = "failure"   # it was attempted and failed (error, timeout)

    def __str__(self) -> str:
        return self.value


#: An action name outside :class:`Act` must still look like one (``noun.verb``, lower case),
#: so a component that needs a new act before it is added here cannot smuggle in free text.
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

KNOWN_ACTIONS = frozenset(a.value for a in Act)
OUTCOMES = frozenset(o.value for o in Outcome)


def action_name(action: Act | str) -> str:
    """The wire name of ``action``; raises ``ValueError`` for a malformed name."""
    if isinstance(action, Act):
        return action.value
    if not isinstance(action, str) or not ACTION_PATTERN.match(action):
        raise ValueError(f"action {action!r} is not an act name like 'workspace.started' "
                         f"(see spe_audit.Act)")
    return action


def outcome_name(outcome: Outcome | str) -> str:
    if isinstance(outcome, Outcome):
        return outcome.value
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {sorted(OUTCOMES)}")
    return outcome
