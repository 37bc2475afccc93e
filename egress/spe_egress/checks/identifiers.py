"""Identifier scanning for text: DICOM UIDs, dates (of birth), pseudonymous patient IDs,
e-mail addresses and phone numbers.

:func:`find_identifiers` works on one string and returns :class:`Hit` spans; callers turn
them into findings located in a text file (character offsets, line) or a table cell.
Spans never overlap: the more specific kind wins (a UID's digits are not a phone number,
a date is not a phone number).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import AbstractSet

from . import names as _names, national_ids as _national
from .model import Severity

UID, UID_STANDARD, DOB, DATE, PSEUDONYM, EMAIL, PHONE = (
    "identifier.dicom-uid", "identifier.dicom-uid", "identifier.date-of-birth", "identifier.date",
    "identifier.pseudonym", "identifier.email", "identifier.phone",
)
NATIONAL_ID, PERSON_NAME = _national.CHECK, _names.CHECK


#: Joins table cells into one text for a single scan; no pattern matches across it.
CELL_SEPARATOR = "\x00"


@dataclass(frozen=True)
class Hit:
    check: str
    severity: Severity
    message: str
    start: int
    end: int


# --------------------------------------------------------------- DICOM UIDs
_UID_RE = re.compile(r"(?<![\w.])[012](?:\.(?:0|[1-9]\d*)){2,}(?!\w|\.\d)")
_UID_ROOTS = ("1.2.840.", "1.3.6.1.4.1.", "1.2.826.0.1.", "1.2.276.0.", "1.2.392.", "1.3.12.2.",
              "1.2.250.1.", "1.3.46.", "1.2.752.", "1.2.124.")
_STANDARD_ROOT = "1.2.840.10008."  # UIDs defined by the DICOM standard itself


def _uid_hits(text: str) -> list[Hit]:
    hits = []
    for m in _UID_RE.finditer(text):
        uid = m.group(0)
        parts = uid.split(".")
        if len(uid) > 64:
            continue
        if uid.startswith(_STANDARD_ROOT):
            hits.append(Hit(UID_STANDARD, Severity.INFO,
                            f"'{uid}' is a UID defined by the DICOM standard (a transfer syntax or "
                            "object class), not an identifier of a patient's image.", *m.span()))
            continue
        uuid_derived = uid.startswith("2.25.") and len(parts) == 3 and len(parts[2]) >= 10
        rooted = uid.startswith(_UID_ROOTS) and len(parts) >= 5
        long_oid = (len(parts) >= 7 and any(len(p) >= 4 for p in parts)) or len(parts) >= 9
        if uuid_derived or rooted or long_oid:
            hits.append(Hit(UID, Severity.BLOCK,
                            f"'{uid}' looks like a DICOM UID (study, series or instance identifier). "
                            "It links the output to a specific image in the dataset; remove it.",
                            *m.span()))
    return hits


# --------------------------------------------------------------- dates
_MONTHS = {m: i + 1 for i, names in enumerate([
    "jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
    "aug august", "sep sept september", "oct october", "nov november", "dec december",
]) for m in names.split()}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_RES = [
    ("ymd", re.compile(r"(?<![\d.])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d]|\.\d)")),
    ("dmy", re.compile(r"(?<![\d.])(\d{1,2})([-/.])(\d{1,2})\2(\d{4})(?![\d]|\.\d)")),
    ("d_mon_y", re.compile(rf"(?i)(?<!\w)(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+({_MONTH_RE})\.?,?\s+(\d{{4}})(?!\d)")),
    ("mon_d_y", re.compile(rf"(?i)(?<!\w)({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)")),
    ("compact", re.compile(r"(?<![\w.])((?:18|19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?![\w.])")),
]
BIRTH_WORDS = re.compile(
    r"(?i:birth|born\b|geboren|geburt|naissance|nacimiento|nascita|d\.o\.b)|DOB|(?i:(?<![a-z])dob(?![a-z]))")
_BIRTH_WINDOW = 40


def _valid(y: int, mo: int, d: int) -> bool:
    return 1870 <= y <= 2099 and 1 <= mo <= 12 and 1 <= d <= (29 if mo == 2 else 30 if mo in (4, 6, 9, 11) else 31)


def _date_hits(text: str, birth_context: bool, date_context: bool) -> list[Hit]:
    hits = []
    for style, rx in _DATE_RES:
        for m in rx.finditer(text):
            g = m.groups()
            if style == "ymd":
                ok = _valid(int(g[0]), int(g[2]), int(g[3]))
            elif style == "dmy":
                a, b, y = int(g[0]), int(g[2]), int(g[3])
                ok = _valid(y, b, a) or _valid(y, a, b)
            elif style == "d_mon_y":
                ok = _valid(int(g[2]), _MONTHS[g[1].lower()], int(g[0]))
            elif style == "mon_d_y":
                ok = _valid(int(g[2]), _MONTHS[g[0].lower()], int(g[1]))
            else:
                ok = _valid(int(g[0]), int(g[1]), int(g[2]))
            if not ok:
                continue
            start, end = m.span()
            lo = max(0, start - _BIRTH_WINDOW)
            line_start = max(text.rfind("\n", lo, start), text.rfind(CELL_SEPARATOR, lo, start)) + 1
            before = text[max(line_start, lo):start]
            near_birth = birth_context or BIRTH_WORDS.search(before) is not None
            if style == "compact" and not (near_birth or date_context):
                continue  # an 8-digit number is a date only where dates or births are the subject
            if near_birth:
                hits.append(Hit(DOB, Severity.BLOCK,
                                f"'{m.group(0)}' looks like a date of birth. Dates of birth identify "
                                "people; give age bands (e.g. 60-69) instead.", start, end))
            else:
                hits.append(Hit(DATE, Severity.WARN,
                                f"'{m.group(0)}' is a full calendar date. Exact dates (of scans, visits) "
                                "can identify patients; check it is not about a person, or give the "
                                "year or month only.", start, end))
    return hits


# --------------------------------------------------------------- contacts
_EMAIL_RE = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_PHONE_INTL = re.compile(r"(?<![\w+])(?:\+|00)[1-9][\d\s()./-]{6,22}\d(?![\w])")
_PHONE_NATIONAL = re.compile(r"(?<![\w.+/-])(?:\(0\d{1,5}\)|0[1-9]\d{0,4})(?:[ /-]+\d{2,8}){1,4}(?![\w])"
                             r"|(?<![\w.])0[1-9](?:[ .]\d{2}){4}(?![\w])")
_PHONE_CONTEXT = re.compile(r"(?i)\b(?:tel|phone|telephone|telefon|téléphone|mobile|mobil|handy|fax|gsm)\b\.?\s*[:=]?\s*"
                            r"(\+?\d[\d\s()./-]{4,20}\d)")


def _phone_hits(text: str) -> list[Hit]:
    hits = []
    def add(start: int, end: int, lo: int, hi: int) -> None:
        digits = sum(c.isdigit() for c in text[start:end])
        if lo <= digits <= hi:
            hits.append(Hit(PHONE, Severity.WARN,
                            f"'{text[start:end]}' looks like a telephone number. Remove contact details "
                            "of patients, staff or researchers from outputs.", start, end))
    for m in _PHONE_INTL.finditer(text):
        add(*m.span(), 8, 15)
    for m in _PHONE_NATIONAL.finditer(text):
        add(*m.span(), 9, 12)
    for m in _PHONE_CONTEXT.finditer(text):
        add(*m.span(1), 6, 15)
    return hits


def _email_hits(text: str) -> list[Hit]:
    return [Hit(EMAIL, Severity.WARN,
                f"'{m.group(0)}' is an e-mail address. Remove personal contact details from outputs.",
                *m.span()) for m in _EMAIL_RE.finditer(text)]


# --------------------------------------------------------------- pseudonymous IDs
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:[-_.:/][A-Za-z0-9]+)*")
_SEP_RE = re.compile(r"[-_.:/]")


def _pseudonym_hits(text: str, ids: AbstractSet[str]) -> list[Hit]:
    """Whole tokens, or runs of a token's separator-delimited parts, that are pseudonyms:
    ``sub_PAT-3f2a`` contains ``PAT-3f2a``. Case-insensitive. IDs with characters outside
    the token alphabet are searched for literally."""
    if not ids:
        return []
    candidates = {t for t in set(_TOKEN_RE.findall(text)) if _pseudonym_spans(t, ids)}
    hits = []
    if candidates:
        for m in _TOKEN_RE.finditer(text):
            if m.group(0) in candidates:
                for s, e in _pseudonym_spans(m.group(0), ids):
                    hits.append(_pseudonym_hit(text, m.start() + s, m.start() + e))
    for odd in (i for i in ids if not _TOKEN_RE.fullmatch(i)):
        for m in re.finditer(re.escape(odd), text, re.IGNORECASE):
            hits.append(_pseudonym_hit(text, *m.span()))
    return hits


def _pseudonym_spans(token: str, ids: AbstractSet[str]) -> list[tuple[int, int]]:
    if token.lower() in ids:
        return [(0, len(token))]
    bounds = [m.start() for m in _SEP_RE.finditer(token)]
    if not bounds:
        return []
    starts, ends = [0] + [b + 1 for b in bounds], bounds + [len(token)]
    spans, taken_until = [], -1
    for s in starts:
        if s < taken_until:
            continue
        for e in reversed(ends):  # longest match first
            if e > s and token[s:e].lower() in ids:
                spans.append((s, e))
                taken_until = e
                break
    return spans


def _pseudonym_hit(text: str, start: int, end: int) -> Hit:
    return Hit(PSEUDONYM, Severity.BLOCK,
               f"'{text[start:end]}' is the pseudonymous ID of a patient in this permit's datasets. Outputs must "
               "not list individual patients.", start, end)


# --------------------------------------------------------------- national IDs and names
def _national_hits(text: str, header: str) -> list[Hit]:
    return [Hit(NATIONAL_ID, Severity.BLOCK, _national.describe(h), h.start, h.end)
            for h in _national.find_national_ids(text, header)]


def _name_hits(text: str, name_column: bool) -> list[Hit]:
    return [Hit(PERSON_NAME, Severity.INFO if h.credits else Severity.WARN, _names.describe(h), h.start, h.end)
            for h in _names.find_names(text, name_column=name_column)]


# --------------------------------------------------------------- all together
def find_identifiers(text: str, pseudonymous_ids: AbstractSet[str] = frozenset(), *,
                     birth_context: bool = False, date_context: bool = False,
                     numbers_are_values: bool = False, header: str = "", name_column: bool = False,
                     names: bool = True) -> list[Hit]:
    """All identifier hits in ``text``, sorted by position, without overlaps.

    ``birth_context``: the text is known to be about births (a ``dob`` column), so every
    date is a date of birth. ``date_context``: the text is known to hold dates (a ``date``
    column), so ``YYYYMMDD`` numbers count as dates. ``numbers_are_values``: the text is a single table cell that
    parses as a number, never a phone number. ``header``: a column header, context for the
    national identifiers whose check digit alone is weak (``BSN``, ``NHS number`` …).
    ``name_column``: the text is a cell of a column of names. ``names``: look for names of
    people at all (not in file names).
    """
    kept: list[Hit] = []
    starts: list[int] = []  # sorted starts of the kept, pairwise disjoint spans
    ends: list[int] = []
    for group in (_uid_hits(text), _pseudonym_hits(text, pseudonymous_ids), _email_hits(text),
                  _national_hits(text, header), _date_hits(text, birth_context, date_context),
                  [] if numbers_are_values else _phone_hits(text), _name_hits(text, name_column) if names else []):
        for hit in sorted(group, key=lambda h: (h.start, -(h.end - h.start))):
            i = bisect_left(starts, hit.start)
            if (i > 0 and ends[i - 1] > hit.start) or (i < len(starts) and starts[i] < hit.end):
                continue  # overlaps a span already taken by a more specific kind
            starts.insert(i, hit.start)
            ends.insert(i, hit.end)
            kept.append(hit)
    return sorted(kept, key=lambda h: (h.start, h.end))
