"""Value types of the disclosure-check engine: inputs, policy, findings, reports.

Everything here is plain data: no I/O, no clock. ``CheckReport.to_dict()`` is the
machine-readable record that the gateway stores, signs and shows to reviewers; its key
order is fixed so that two runs over the same input produce byte-identical JSON.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .pseudonyms import PseudonymSet

REPORT_VERSION = 1

#: Extension-style names accepted in ``allowed_types`` for the detected type they mean.
TYPE_ALIASES = {
    "jpg": "jpeg", "jpe": "jpeg", "md": "markdown", "htm": "html", "text": "txt", "log": "txt",
    "tif": "tiff", "yml": "yaml", "bin": "binary", "dcm": "dicom", "nii": "nifti", "pt": "pytorch",
    "pth": "pytorch", "pkl": "pickle", "tab": "tsv",
}

#: Types a default policy lets out: plain tables, text, figures and documents.
DEFAULT_ALLOWED_TYPES = ("csv", "tsv", "txt", "json", "png", "jpeg", "pdf", "html")


class Severity(enum.Enum):
    """How bad a finding is. INFO never changes a verdict; WARN needs a reviewer's eye;
    BLOCK means the file must not be released as it is."""

    INFO = "info"
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:  # "warn", not "Severity.WARN", in messages and logs
        return self.value


_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.BLOCK: 2}

#: Verdict for the worst severity found (``None`` = no finding at all).
VERDICT_PASS, VERDICT_REVIEW, VERDICT_BLOCK = "pass", "review", "block"


def verdict_for(findings: Iterable["Finding"]) -> str:
    worst = max((f.severity.rank for f in findings), default=0)
    return {0: VERDICT_PASS, 1: VERDICT_REVIEW, 2: VERDICT_BLOCK}[worst]


@dataclass(frozen=True)
class FileInput:
    """One file of an export request: its path as the researcher named it, and its bytes."""

    name: str
    data: bytes

    @property
    def extension(self) -> str:
        """Lower-case extension without the dot; ``nii.gz``-style double extensions kept."""
        base = self.name.rsplit("/", 1)[-1].lower()
        if "." not in base.strip("."):
            return ""
        for double in ("nii.gz", "tar.gz", "tar.bz2", "tar.xz"):
            if base.endswith("." + double):
                return double
        return base.rsplit(".", 1)[-1]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class CheckPolicy:
    """Thresholds, normally taken from the DataPermit's export policy.

    ``min_cell_count``: smallest publishable count (ACRO ``safe_threshold``).
    ``dominance_n``/``dominance_k``: N-K rule, the top n contributors may hold at most k of
    a cell's total (ACRO ``safe_dominance_n``/``safe_dominance_ratio``).
    ``p_ratio``: p% rule, total minus the two largest must be at least p times the largest
    (ACRO ``safe_p_ratio``). ``zeros_disclosive``: flag zero counts (ACRO
    ``zeros_are_disclosive``). ``allowed_types``: detected types (or families, e.g.
    ``archive``) that may leave, extension spellings accepted (``jpg`` means ``jpeg``, ``md``
    means ``markdown``); DICOM and NIfTI are blocked whatever this says.
    """

    allowed_types: Sequence[str] = DEFAULT_ALLOWED_TYPES
    max_file_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int | None = None
    min_cell_count: int = 10
    dominance_n: int = 2
    dominance_k: float = 0.9
    p_ratio: float = 0.1
    zeros_disclosive: bool = True
    max_findings_per_check: int = 50
    allow_record_level: bool = False

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        if self.min_cell_count < 1:
            raise ValueError("min_cell_count must be at least 1")
        if self.dominance_n < 1:
            raise ValueError("dominance_n must be at least 1")
        if not 0 < self.dominance_k <= 1:
            raise ValueError("dominance_k must be in (0, 1]")
        if not 0 <= self.p_ratio <= 1:
            raise ValueError("p_ratio must be in [0, 1]")
        if self.max_findings_per_check < 1:
            raise ValueError("max_findings_per_check must be at least 1")
        canonical = (TYPE_ALIASES.get(t.strip().lower().lstrip("."), t.strip().lower().lstrip("."))
                     for t in self.allowed_types)
        object.__setattr__(self, "allowed_types", tuple(dict.fromkeys(canonical)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_types": list(self.allowed_types),
            "max_file_bytes": self.max_file_bytes,
            "max_total_bytes": self.max_total_bytes,
            "min_cell_count": self.min_cell_count,
            "dominance_n": self.dominance_n,
            "dominance_k": self.dominance_k,
            "p_ratio": self.p_ratio,
            "zeros_disclosive": self.zeros_disclosive,
            "allow_record_level": self.allow_record_level,
        }


@dataclass(frozen=True)
class CheckContext:
    """What the checks need to know about the permit beyond the policy.

    ``pseudonymous_ids``: the pseudonymous patient IDs of the permit's datasets (matched
    case-insensitively as whole tokens): given in the clear, or a :class:`PseudonymSet` that
    may hold only their SHA-256 digests (as the gateway gets them). ``released_tables``: ledger entries made by
    :func:`released_table_fingerprint` for tables already released under this permit.
    """

    pseudonymous_ids: frozenset[str] | set[str] | PseudonymSet = frozenset()
    released_tables: Sequence[Mapping[str, Any]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pseudonymous_ids", PseudonymSet.of(self.pseudonymous_ids))
        # ``released_table_fingerprint`` returns None for non-tables; tolerate such entries.
        object.__setattr__(self, "released_tables",
                           tuple(t for t in self.released_tables or () if isinstance(t, Mapping)))


@dataclass(frozen=True)
class Finding:
    """One thing a check noticed, said for a reviewer who is not a statistician."""

    check: str
    severity: Severity
    message: str
    location: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity.value,
            "message": self.message,
            "location": dict(self.location) if self.location is not None else None,
        }


@dataclass
class FileReport:
    name: str
    size: int
    sha256: str
    detected_type: str
    family: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return verdict_for(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "detected_type": self.detected_type,
            "family": self.family,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class CheckReport:
    policy: CheckPolicy
    files: list[FileReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # request-wide (e.g. total size)

    @property
    def verdict(self) -> str:
        return verdict_for([*self.findings, *(f for r in self.files for f in r.findings)])

    def to_dict(self) -> dict[str, Any]:
        every = [*self.findings, *(f for r in self.files for f in r.findings)]
        counts = {s.value: sum(1 for f in every if f.severity is s) for s in Severity}
        return {
            "version": REPORT_VERSION,
            "verdict": self.verdict,
            "summary": {"files": len(self.files), **counts},
            "policy": self.policy.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "files": [r.to_dict() for r in self.files],
        }
