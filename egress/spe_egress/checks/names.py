"""Names of people in free text: a light, offline detector (no model, no download).

Given names and surnames of the EU languages come from ``data/names.tsv`` (taken from
Faker's person lists, see ``data/build_names.py``). A name is reported only with two
signals, because many names are also words (``Grace``, ``Mark``, ``Koch``, ``Rose``):

* a capitalised given name followed by a capitalised surname (particles such as ``van``,
  ``de``, ``von``, ``di`` allowed between them): ``Anna Schmidt``, ``Pieter van der Berg``;
* ``Surname, Given``: ``Jansen, Pieter``;
* a title or a patient word followed by a capitalised name from the lists: ``Dr. Müller``,
  ``Mrs Jones``, ``patient Jansen``, ``Herr Schmidt``, ``Mme Dubois``;
* in a column whose header says it holds names (``name``, ``patient_name``, ``naam``,
  ``nom``, ``nome``, ``nombre`` …), a single capitalised name from the lists.

Names are WARN (a person decides: an author is fine, a patient is not); names in a credits
section or a reference list (``Authors``, ``Contributors``, ``Acknowledgements``,
``References``, ``©`` …, on the line or in the heading above it) are INFO.
"""

from __future__ import annotations

import functools
import pathlib
import re
from bisect import bisect_left
from dataclasses import dataclass

CHECK = "identifier.person-name"
_DATA = pathlib.Path(__file__).with_name("data") / "names.tsv"

_UPPER = "A-ZÀ-ÖØ-ÞĀ-Žŀ-ſ"  # Latin capitals incl. accented
_WORD = rf"[{_UPPER}][a-zß-öø-ÿā-žƀ-ɏ]+(?:['’-][{_UPPER}]?[a-zß-öø-ÿā-žƀ-ɏ]+)?"
_PARTICLES = r"(?:van|von|der|den|de|del|della|di|da|dos|das|du|le|la|ter|ten|zu|af|av|y|e)"
_TITLE = (r"(?:Dr|Prof|Mr|Mrs|Ms|Miss|Mx|Herr|Frau|Hr|Fr|Dhr|Mevr|Mw|M|Mme|Mlle|Sr|Sra|Srta|Sig|Sig\.ra|"
          r"Dott|Dott\.ssa|Pt|Patient|Patientin|patient|patiente|paziente|paciente|patiënt|Patiënt|"
          r"Mister|Madame|Monsieur|Señor|Señora|Signor|Signora|Senhor|Senhora)")
_PAIR = re.compile(rf"(?<![\w.@/-])({_WORD})((?:\s+{_PARTICLES})*)\s+({_WORD})(?![\w@])")
_REVERSED = re.compile(rf"(?<![\w.@/-])({_WORD}),\s*({_WORD})(?![\w@])")
_TITLED = re.compile(rf"(?<![\w])({_TITLE})\.?\s+({_WORD})(?![\w@])")
_SINGLE = re.compile(rf"(?<![\w.@/-])({_WORD})(?![\w@])")
_CREDITS = re.compile(
    r"(?i)\b(?:authors?|contributors?|acknowledg(?:e)?ments?|credits?|maintainers?|written by|"
    r"copyright|co-?authors?|auteurs?|autor(?:en|es)?|autori|remerciements|danksagung|dank an|"
    r"corresponding|et al\.?|references|bibliography|bibliographie|literatur|literatuur|bibliografia|"
    r"referenties|r[ée]f[ée]rences|citations?)\b|©")
NAME_COLUMN = re.compile(
    r"(?i)^(?:(?:patient|subject|first|last|given|family|full|sur|person|doctor|physician|reviewer)?_?"
    r"(?:name|names|firstname|lastname|surname|naam|achternaam|voornaam|nom|prenom|prénom|nome|cognome|"
    r"nombre|apellidos?|vorname|nachname|efternamn|fornavn|etternavn|sukunimi|nazwisko|imie|imię))$")


@dataclass(frozen=True)
class NameHit:
    start: int
    end: int
    text: str
    why: str
    credits: bool


@functools.lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(given names, surnames), lower case."""
    given, family = set(), set()
    for line in _DATA.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        kind, name, *_ = line.split("\t")
        (given if kind == "given" else family).add(name)
    return frozenset(given), frozenset(family)


def _is(word: str, names: frozenset[str]) -> bool:
    w = word.lower()
    return w in names or ("-" in w and all(p in names for p in w.split("-")))


def find_names(text: str, *, name_column: bool = False) -> list[NameHit]:
    """Names in ``text`` (non-overlapping, in order). ``name_column``: the text is a cell of
    a column whose header says it holds names, so one listed name suffices."""
    given, family = name_lists()
    hits: list[NameHit] = []
    starts: list[int] = []  # sorted starts of the pairwise disjoint spans taken
    ends: list[int] = []
    credits: dict[int, bool] = {}  # per line start

    def add(start: int, end: int, why: str) -> None:
        i = bisect_left(starts, start)
        if (i > 0 and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            return
        starts.insert(i, start)
        ends.insert(i, end)
        line_start = _line_start(text, start)
        if line_start not in credits:
            credits[line_start] = _in_credits(text, line_start)
        hits.append(NameHit(start, end, text[start:end], why, credits[line_start]))

    for m in _finditer_overlapping(_PAIR, text):
        if _is(m.group(1), given) and _is(m.group(3), family) and m.group(1).lower() != m.group(3).lower():
            add(m.start(), m.end(), f"given name '{m.group(1)}' and surname '{m.group(3)}'")
    for m in _TITLED.finditer(text):
        if _is(m.group(2), family) or _is(m.group(2), given):
            add(m.start(), m.end(), f"'{m.group(2)}' after '{m.group(1)}'")
    for m in _REVERSED.finditer(text):
        if _is(m.group(1), family) and _is(m.group(2), given) and not _is(m.group(1), given):
            add(m.start(), m.end(), f"surname '{m.group(1)}', given name '{m.group(2)}'")
    if name_column:
        for m in _SINGLE.finditer(text):
            if _is(m.group(1), given) or _is(m.group(1), family):
                add(m.start(), m.end(), f"'{m.group(1)}' in a column of names")
    return sorted(hits, key=lambda h: h.start)


def _finditer_overlapping(rx: re.Pattern[str], text: str):
    """``Dear Anna Schmidt``: after a failed pair at ``Dear Anna`` try again from ``Anna``."""
    pos = 0
    while True:
        m = rx.search(text, pos)
        if not m:
            return
        yield m
        pos = m.start(3) if m.start(3) > m.start() else m.end()


_LINE_WINDOW = 300


def _line_start(text: str, pos: int) -> int:
    """Start of the line (or table cell) holding ``pos``, at most ``_LINE_WINDOW`` back."""
    lo = max(0, pos - _LINE_WINDOW)
    return max(text.rfind("\n", lo, pos), text.rfind("\x00", lo, pos), lo - 1) + 1


def _in_credits(text: str, line_start: int) -> bool:
    """The line, or one of the three non-empty lines above it, or the nearest Markdown
    heading above it (within 2,000 characters), names a credits or reference section."""
    ends = [e for e in (text.find("\n", line_start, line_start + _LINE_WINDOW),
                        text.find("\x00", line_start, line_start + _LINE_WINDOW)) if e != -1]
    line_end = min(ends) if ends else min(len(text), line_start + _LINE_WINDOW)
    if _CREDITS.search(text, line_start, line_end):
        return True
    if line_start and text[line_start - 1] == "\x00":
        return False  # a table cell: no lines above it
    before = text[max(0, line_start - 2000):line_start].splitlines()
    recent = [line for line in before if line.strip()][-3:]
    if any(_CREDITS.search(line) for line in recent):
        return True
    heading = next((line for line in reversed(before) if line.lstrip().startswith("#")), None)
    return bool(heading and _CREDITS.search(heading))


def describe(hit: NameHit) -> str:
    if hit.credits:
        return (f"'{hit.text}' looks like a person's name ({hit.why}) in a credits or author section. "
                "Authors may be named; check it is not a patient.")
    return (f"'{hit.text}' looks like a person's name ({hit.why}). Names of patients must not leave the "
            "environment; if this is an author or a staff member, say so in the justification, else remove it.")
