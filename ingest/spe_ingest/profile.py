"""A profile and its options compiled into one tag -> action table."""
from __future__ import annotations

from dataclasses import dataclass, field

from .dictionary import tag as tag_for_keyword

from . import rules

PROFILES = ("basic", "eucaim")
# EUCAIM's hospital pipeline keeps age, sex, size and weight, generalises
# dates to the year, keeps cleaned descriptions and names the site instead
# of the institution.
EUCAIM_OPTIONS = frozenset({"retain-patient-characteristics", "clean-descriptors",
                            "retain-longitudinal-modified-dates"})
EXCLUSIVE = ("retain-longitudinal-full-dates", "retain-longitudinal-modified-dates")

# action codes
REMOVE, KEEP, ZERO, DUMMY, UID, PSEUDO, SHIFT, YEAR, CLEAN, WALK, CWALK, SITE = range(12)
ACTION_NAMES = ("remove", "keep", "zero", "dummy", "uid", "pseudonym", "shift",
                "year", "clean", "walk", "clean-walk", "site")

PSEUDO_KEYWORDS = ("PatientID", "PatientName", "AccessionNumber", "StudyID")
PSEUDO_TAGS = {tag_for_keyword(k): k for k in PSEUDO_KEYWORDS}
DATE_VRS = ("DA", "DT")
TEXT_VRS = ("AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR")

CLEAN_PIXEL_DATA = "clean-pixel-data"

# PS3.16 CID 7050 "De-identification Method" codes, scheme DCM
CODE_BASIC = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES = {
    CLEAN_PIXEL_DATA: ("113101", "Clean Pixel Data Option"),
    "clean-graphics": ("113103", "Clean Graphics Option"),
    "clean-structured-content": ("113104", "Clean Structured Content Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "retain-longitudinal-full-dates": (
        "113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-longitudinal-modified-dates": (
        "113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-uids": ("113110", "Retain UIDs Option"),
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
    "retain-institution-identity": ("113112", "Retain Institution Identity Option"),
}


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    options: frozenset
    actions: dict = field(hash=False, compare=False)   # tag -> action code
    overlay_data: int = REMOVE
    overlay_comments: int = REMOVE
    curves: int = REMOVE
    year_dates: bool = False
    institution_site: bool = False

    @property
    def safe_private(self) -> bool:
        return "retain-safe-private" in self.options


def _action(code: str, vr: str, tag: int, year_dates: bool) -> int:
    sq = vr == "SQ"
    if tag in PSEUDO_TAGS and code not in ("K", "C"):
        return PSEUDO
    if code == "K":
        return WALK if sq else KEEP
    if code == "C":
        if sq:
            return CWALK
        if vr in DATE_VRS:
            return YEAR if year_dates else SHIFT
        if vr == "TM":
            return ZERO if year_dates else KEEP
        if vr in TEXT_VRS:
            return CLEAN
        return KEEP
    if code == "X":
        return REMOVE
    if code in ("Z", "X/Z", "X/Z/D"):
        return ZERO
    if code in ("D", "X/D"):
        # a dummy sequence is an empty one: walking it would keep code items
        # (person identification codes, for instance)
        return ZERO if sq else (UID if vr == "UI" else DUMMY)
    if code == "Z/D":
        return DUMMY if vr in ("DA", "DT", "TM") else ZERO
    if code == "U":
        return UID
    if code == "X/Z/U*":
        return WALK if sq else UID
    raise ProfileError(f"unknown action code {code!r}")


def compile_profile(name: str, options) -> Profile:
    options = frozenset(options)
    unknown = options - set(rules.OPTIONS)
    if unknown:
        raise ProfileError(f"unknown option(s): {', '.join(sorted(unknown))}; "
                           f"choose from {', '.join(rules.OPTIONS)}")
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    year_dates = name == "eucaim"
    if year_dates:
        if "retain-longitudinal-full-dates" in options:
            raise ProfileError("the eucaim profile generalises dates; it cannot be "
                               "combined with retain-longitudinal-full-dates")
        options = options | EUCAIM_OPTIONS
    if all(o in options for o in EXCLUSIVE):
        raise ProfileError("retain-longitudinal-full-dates and "
                           "retain-longitudinal-modified-dates exclude each other")
    actions: dict[int, int] = {}
    overlay_data = overlay_comments = curves = REMOVE
    for row in rules.load_rows():
        code = rules.effective_code(row, options)
        tag = row.tag_int
        if tag is None:
            if row.tag == "60xx,4000":
                overlay_comments = CLEAN if code == "C" else REMOVE
            # Overlay bitmaps (60xx,3000) and curves cannot be cleaned
            # automatically, so they are removed even with clean-graphics.
            continue
        actions[tag] = _action(code, row.vr, tag, year_dates)
    institution_site = name == "eucaim"
    if institution_site:
        actions[tag_for_keyword("InstitutionName")] = SITE
    return Profile(name, options, actions, overlay_data, overlay_comments, curves,
                   year_dates, institution_site)


def method_codes(profile: Profile) -> list[tuple[str, str]]:
    return [CODE_BASIC] + [OPTION_CODES[o] for o in sorted(profile.options)]
