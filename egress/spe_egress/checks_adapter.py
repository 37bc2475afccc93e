"""The one place that calls the automatic disclosure checks (``spe_egress.checks``).

The service works with plain dicts (a report's ``to_dict()``), so the engine's types stay
behind this module. The limits come from the permit's export policy; where a permit leaves
one out, its default is the DataPermit model's (``spe_api.ExportPolicy``), the same default
the CRD carries: one home for the export policy's defaults.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from spe_api import ExportPolicy as PermitExportPolicy
from spe_api.quantity import parse_quantity

from . import checks as _engine

_DEFAULT = PermitExportPolicy()


@dataclass(frozen=True)
class Thresholds:
    """The export policy's limits that the checks apply (from the DataPermit)."""

    allowed_types: list[str] = field(default_factory=lambda: list(_DEFAULT.allowed_file_types))
    max_file_bytes: int = int(parse_quantity(_DEFAULT.max_file_size))
    min_cell_count: int = _DEFAULT.disclosure.min_cell_count
    dominance_n: int = _DEFAULT.disclosure.dominance.n
    dominance_k: float = _DEFAULT.disclosure.dominance.k
    p_ratio: float = _DEFAULT.disclosure.p_ratio
    zeros_disclosive: bool = _DEFAULT.disclosure.zeros_disclosive
    allow_record_level: bool = _DEFAULT.record_level_outputs.allowed

    @classmethod
    def from_policy(cls, pol: PermitExportPolicy) -> Thresholds:
        d = pol.disclosure
        return cls(allowed_types=list(pol.allowed_file_types), max_file_bytes=int(parse_quantity(pol.max_file_size)),
                   min_cell_count=d.min_cell_count, dominance_n=d.dominance.n, dominance_k=d.dominance.k,
                   p_ratio=d.p_ratio, zeros_disclosive=d.zeros_disclosive,
                   allow_record_level=pol.record_level_outputs.allowed)


def run(files: list[tuple[str, bytes]], t: Thresholds, pseudonymous_ids: AbstractSet[str],
        released_tables: list[dict]) -> dict:
    """Run every check over the files; return the report as a dict (``verdict``, ``files``)."""
    policy = _engine.CheckPolicy(
        allowed_types=list(t.allowed_types), max_file_bytes=t.max_file_bytes,
        min_cell_count=t.min_cell_count, dominance_n=t.dominance_n,
        dominance_k=t.dominance_k, p_ratio=t.p_ratio, zeros_disclosive=t.zeros_disclosive,
        allow_record_level=t.allow_record_level)
    ctx = _engine.CheckContext(pseudonymous_ids=pseudonymous_ids, released_tables=list(released_tables))
    out = _engine.run_checks([_engine.FileInput(name=n, data=d) for n, d in files], policy, ctx).to_dict()
    out.setdefault("engine", "spe_egress.checks")
    return out


def sign(report: dict, key: bytes) -> dict:
    """The signed check record that goes into the release bundle and the audit trail."""
    return _engine.sign_report(report, key)


def verify(record: dict, key: bytes) -> bool:
    return _engine.verify_report_signature(record, key)


def fingerprint(name: str, data: bytes) -> dict | None:
    """A ledger entry for a released table (for the differencing check), or None."""
    try:
        return _engine.released_table_fingerprint(name, data)
    except Exception:  # noqa: BLE001 - not a table: nothing to record
        return None
