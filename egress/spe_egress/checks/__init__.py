"""Automatic disclosure checks for the egress-review gateway (a pure library).

    report = run_checks([FileInput(name, data)], CheckPolicy(...), CheckContext(...))
    record = sign_report(report.to_dict(), private_key)

See README.md in this package for every check, its severity and its explanation.
"""

from .engine import released_table_fingerprint, run_checks, text_findings
from .identifiers import find_identifiers
from .model import (CheckContext, CheckPolicy, CheckReport, FileInput, FileReport, Finding, Severity,
                    verdict_for)
from .pseudonyms import PseudonymSet
from .signing import canonical_json, sign_report, verify_report_signature
from .sniff import Sniffed, decode_text, sniff
from .tables import Layout, Table, classify, parse_table

__all__ = [
    "CheckContext", "CheckPolicy", "CheckReport", "FileInput", "FileReport", "Finding", "Layout", "PseudonymSet",
    "Severity", "Sniffed", "Table", "canonical_json", "classify", "decode_text", "find_identifiers", "parse_table",
    "released_table_fingerprint", "run_checks", "sign_report", "sniff", "text_findings", "verdict_for",
    "verify_report_signature",
]
