"""Results of the doctor's checks, the verdict and the table a hospital IT person reads (pure)."""

from __future__ import annotations

import enum
import textwrap
from dataclasses import dataclass


class Status(str, enum.Enum):
    OK = "OK"
    WARN = "WARN"          # works, but a setting is missing or weaker than it should be
    FAIL = "FAIL"          # the SPE will not work as installed
    UNSAFE = "UNSAFE"      # the SPE would run, but its isolation promise would be false
    SKIPPED = "SKIPPED"    # not checked (nothing configured to check against)


SEVERITY = {Status.OK: 0, Status.SKIPPED: 0, Status.WARN: 0, Status.FAIL: 1, Status.UNSAFE: 2}


@dataclass(frozen=True)
class CheckResult:
    name: str            # e.g. "network-policy"
    status: Status
    detail: str          # what was seen
    fix: str = ""        # what to do about it (empty when OK)

    @property
    def ok(self) -> bool:
        return SEVERITY[self.status] == 0


def exit_code(results: list[CheckResult]) -> int:
    """0: fit to be an SPE; 1: some check failed; 2: unsafe (isolation not enforced)."""
    return max((SEVERITY[r.status] for r in results), default=0)


def verdict(results: list[CheckResult]) -> str:
    code = exit_code(results)
    if code == 2:
        bad = ", ".join(r.name for r in results if r.status is Status.UNSAFE)
        return (f"UNSAFE: this cluster must not hold health data ({bad}). Workspaces would not be "
                "isolated from each other or from the outside.")
    if code == 1:
        bad = ", ".join(r.name for r in results if r.status is Status.FAIL)
        return f"NOT READY: fix the failed checks ({bad}) and run `spe-operator doctor` again."
    return "SAFE: every check passed; this cluster is fit to be a Secure Processing Environment."


def render_table(results: list[CheckResult], width: int = 100) -> str:
    """A plain-text table: CHECK, RESULT, DETAIL (and the fix under it), then the verdict."""
    name_w = max([len("CHECK")] + [len(r.name) for r in results])
    status_w = max(len(s.value) for s in Status)
    text_w = max(30, width - name_w - status_w - 4)
    lines = [f"{'CHECK'.ljust(name_w)}  {'RESULT'.ljust(status_w)}  DETAIL",
             f"{'-' * name_w}  {'-' * status_w}  {'-' * text_w}"]
    for r in results:
        body = textwrap.wrap(r.detail, text_w) or [""]
        if r.fix and not r.ok or r.fix and r.status is Status.WARN:
            body += textwrap.wrap("fix: " + r.fix, text_w)
        lines.append(f"{r.name.ljust(name_w)}  {r.status.value.ljust(status_w)}  {body[0]}")
        lines += [f"{' ' * name_w}  {' ' * status_w}  {more}" for more in body[1:]]
    banner = verdict(results)
    if exit_code(results) == 2:
        rule = "!" * min(width, len(banner))
        return "\n".join(lines + ["", rule, banner, rule])
    return "\n".join(lines + ["", banner])
