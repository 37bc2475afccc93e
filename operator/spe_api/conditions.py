"""The one conditions helper, following the Kubernetes API conventions.

A condition's ``lastTransitionTime`` changes only when its ``status`` changes; ``reason``,
``message`` and ``observedGeneration`` are refreshed on every call. Functions return new
lists and never mutate their input, so a reconciler can compare before and after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .common import Condition, ConditionStatus, utc


def _as_condition(item: Condition | Mapping[str, Any]) -> Condition:
    return item if isinstance(item, Condition) else Condition.model_validate(dict(item))


def _as_status(status: bool | str | ConditionStatus) -> ConditionStatus:
    if isinstance(status, bool):
        return ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return ConditionStatus(status)


def set_condition(
    conditions: Iterable[Condition | Mapping[str, Any]] | None,
    type: str,  # noqa: A002 - the Kubernetes field's name
    status: bool | str | ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Return ``conditions`` with condition ``type`` set (added at the end if absent)."""
    new_status = _as_status(status)
    result: list[Condition] = []
    found = False
    for item in conditions or ():
        cond = _as_condition(item)
        if cond.type == type:
            found = True
            transition = cond.last_transition_time if cond.status == new_status else utc(now)
            cond = Condition(type=type, status=new_status, reason=reason, message=message,
                             observed_generation=observed_generation, last_transition_time=transition)
        result.append(cond)
    if not found:
        result.append(Condition(type=type, status=new_status, reason=reason, message=message,
                                observed_generation=observed_generation, last_transition_time=utc(now)))
    return result


def get_condition(conditions: Iterable[Condition | Mapping[str, Any]] | None, type: str) -> Condition | None:  # noqa: A002
    for item in conditions or ():
        cond = _as_condition(item)
        if cond.type == type:
            return cond
    return None


def is_true(conditions: Iterable[Condition | Mapping[str, Any]] | None, type: str) -> bool:  # noqa: A002
    cond = get_condition(conditions, type)
    return cond is not None and cond.status == ConditionStatus.TRUE


def remove_condition(conditions: Iterable[Condition | Mapping[str, Any]] | None, type: str) -> list[Condition]:  # noqa: A002
    return [c for c in map(_as_condition, conditions or ()) if c.type != type]


def conditions_to_dicts(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in conditions]
