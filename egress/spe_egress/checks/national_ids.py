"""National person and health identifiers of European schemes, validated by their check
digits (or check letters), in text and in table columns.

Every scheme has a pattern (spaced, dotted and dashed spellings included) and a validator.
A candidate that fails its check digit is never flagged. Schemes whose only protection is a
weak check over bare digits (a random 9-digit number passes the Dutch 11-test one time in
eleven) are flagged only with *context*: a word naming the scheme shortly before it on the
same line (``BSN``, ``NHS number``, ``Steuer-ID`` …), a column header naming it, or a column
where nearly every value validates. Schemes with letters, dates or a two-digit key are
flagged wherever they validate.

:data:`SCHEMES` is the table in ``egress/README.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Callable

CHECK = "identifier.national-id"
#: A context word counts within this many characters before the number, on the same line.
CONTEXT_WINDOW = 48


@dataclass(frozen=True)
class Scheme:
    key: str
    country: str
    name: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool]
    context: re.Pattern[str]
    strong: bool  # flagged without context
    how: str       # the validation, for README and messages

    def normalise(self, raw: str) -> str:
        return re.sub(r"[\s./-]", "", raw).upper()


# ------------------------------------------------------------------ validators
def _digits(s: str) -> list[int]:
    return [int(c) for c in s]


def bsn_valid(s: str) -> bool:
    """Dutch burgerservicenummer: 9 digits, the 11-test (weights 9..2, last digit -1)."""
    if not re.fullmatch(r"\d{9}", s) or s == "0" * 9:
        return False
    d = _digits(s)
    return (sum(d[i] * (9 - i) for i in range(8)) - d[8]) % 11 == 0


def nhs_valid(s: str) -> bool:
    """UK NHS number: 10 digits, modulus 11 with weights 10..2; a remainder giving 10 is invalid."""
    if not re.fullmatch(r"\d{10}", s) or len(set(s)) == 1:
        return False
    d = _digits(s)
    check = 11 - sum(d[i] * (10 - i) for i in range(9)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == d[9]


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_valid(s: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter): letter = number mod 23."""
    m = re.fullmatch(r"([XYZ]?)(\d{7,8})([A-Z])", s)
    if not m or len(m.group(1) + m.group(2)) != 8:
        return False
    number = int(str("XYZ".index(m.group(1))) + m.group(2) if m.group(1) else m.group(2))
    return _DNI_LETTERS[number % 23] == m.group(3)


_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6,
                    8, 12, 14, 16, 10, 22, 25, 24, 23]))
_CF_EVEN = {**{str(i): i for i in range(10)}, **{chr(65 + i): i for i in range(26)}}
_CF_OMOCODE = "LMNPQRSTUV"  # letters that replace digits in an omocode


def codice_fiscale_valid(s: str) -> bool:
    """Italian codice fiscale: 16 characters, the last a check letter over odd/even tables;
    day of birth 01-31 (41-71 for women); omocodes (digits replaced by L-V) accepted."""
    if not re.fullmatch(r"[A-Z]{6}[0-9L-V]{2}[ABCDEHLMPRST][0-9L-V]{2}[A-Z][0-9L-V]{3}[A-Z]", s):
        return False
    day = int("".join(str(_CF_OMOCODE.index(c)) if c in _CF_OMOCODE else c for c in s[9:11]))
    if not (1 <= day <= 31 or 41 <= day <= 71):
        return False
    total = sum(_CF_ODD[c] if i % 2 == 0 else _CF_EVEN[c] for i, c in enumerate(s[:15]))
    return chr(65 + total % 26) == s[15]


def nir_valid(s: str) -> bool:
    """French NIR (numéro de sécurité sociale): sex, year, month, département (2A/2B for
    Corsica), commune, order, and the key 97 - (number mod 97)."""
    m = re.fullmatch(r"([1-478])(\d{2})(\d{2})(\d{2}|2A|2B)(\d{3})(\d{3})(\d{2})", s)
    if not m:
        return False
    month = int(m.group(3))
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    body = s[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(m.group(7))


def kvnr_valid(s: str) -> bool:
    """German Krankenversichertennummer: a letter and 9 digits; the letter as 01-26, then
    the first 8 digits, weights 1,2,1,2 …, cross sums of the products, sum mod 10 = 9th digit."""
    if not re.fullmatch(r"[A-Z]\d{9}", s) or s[1:9] == "0" * 8:
        return False
    seq = f"{ord(s[0]) - 64:02d}" + s[1:9]
    total = 0
    for i, c in enumerate(seq):
        p = int(c) * (1 if i % 2 == 0 else 2)
        total += p // 10 + p % 10
    return total % 10 == int(s[9])


def steuer_id_valid(s: str) -> bool:
    """German Steuer-Identifikationsnummer: 11 digits, no leading 0, in the first ten one digit
    twice or three times and the rest at most once; ISO 7064 MOD 11,10 check digit."""
    if not re.fullmatch(r"[1-9]\d{10}", s):
        return False
    counts = sorted((s[:10].count(c) for c in set(s[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    product = 10
    for c in s[:10]:
        total = (int(c) + product) % 10 or 10
        product = total * 2 % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(s[10])


def _plausible_yymmdd(yy: int, mm: int, dd: int, century: int) -> bool:
    try:
        date(century * 100 + yy, mm, dd)
        return True
    except ValueError:
        return False


def be_rrn_valid(s: str) -> bool:
    """Belgian national register number: YYMMDD, 3-digit order, key 97 - (number mod 97)
    (with a leading 2 for births from 2000); month or day 00 (unknown) and bis numbers
    (month + 20/40) accepted."""
    if not re.fullmatch(r"\d{11}", s):
        return False
    mm, dd = int(s[2:4]), int(s[4:6])
    if mm > 52 or (12 < mm < 20) or (32 < mm < 40) or dd > 31:
        return False
    key = int(s[9:])
    return 97 - int(s[:9]) % 97 == key or 97 - int("2" + s[:9]) % 97 == key


def pt_nif_valid(s: str) -> bool:
    """Portuguese NIF (número de identificação fiscal): 9 digits starting 1-3, 5, 6, 8 or 9;
    weights 9..2, check = 11 - (sum mod 11), 10 and 11 giving 0."""
    if not re.fullmatch(r"[1235689]\d{8}", s):
        return False
    d = _digits(s)
    check = 11 - sum(d[i] * (9 - i) for i in range(8)) % 11
    return (0 if check >= 10 else check) == d[8]


def pt_cc_valid(s: str) -> bool:
    """Portuguese Cartão de Cidadão document number: 8-digit civil number, check digit, two
    letters, check digit; letters as 10-35, doubling every second value from the right, sum mod 10 = 0."""
    if not re.fullmatch(r"\d{9}[A-Z]{2}\d", s):
        return False
    total, second = 0, False
    for c in reversed(s):
        v = int(c, 36)
        if second:
            v *= 2
            v = v - 9 if v > 9 else v
        total += v
        second = not second
    return total % 10 == 0


def _luhn(s: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(s)):
        v = int(c) * (2 if i % 2 else 1)
        total += v - 9 if v > 9 else v
    return total % 10 == 0


def personnummer_valid(s: str) -> bool:
    """Swedish personnummer (or samordningsnummer, day + 60): YYMMDD + 3 digits + Luhn check
    digit over those 10 digits; a 12-digit form starts with the century."""
    if re.fullmatch(r"(?:18|19|20)\d{10}", s):
        century, s = int(s[:2]), s[2:]
    elif re.fullmatch(r"\d{10}", s):
        century = None
    else:
        return False
    yy, mm, dd = int(s[:2]), int(s[2:4]), int(s[4:6])
    dd = dd - 60 if dd > 60 else dd
    centuries = (century,) if century else (19, 20)
    if not any(_plausible_yymmdd(yy, mm, dd, c) for c in centuries):
        return False
    return _luhn(s)


# ------------------------------------------------------------------ schemes
def _ctx(words: str) -> re.Pattern[str]:
    return re.compile(rf"(?i)(?<![a-z])(?:{words})(?![a-z])")


_SEP = r"[ .-]?"
SCHEMES: tuple[Scheme, ...] = (
    Scheme("nl-bsn", "NL", "burgerservicenummer (BSN)",
           re.compile(r"(?<![\w.,-])\d{4}\.?\d{2}\.?\d{3}(?![\w]|[.,-]\d)|(?<![\w.,-])\d{3}[ .-]\d{3}[ .-]\d{3}(?![\w]|[.,-]\d)"),
           bsn_valid, _ctx(r"bsn|burgerservicenummer|burger ?service ?nummer|sofi-?nummer|citizen service number"),
           False, "11-test: Σ dᵢ·(9..2) − d₉ ≡ 0 (mod 11)"),
    Scheme("es-dni", "ES", "DNI / NIE",
           re.compile(r"(?<![\w-])[XYZxyz]?[ -]?\d{7,8}[ -]?[A-Za-z](?![\w])"),
           dni_valid, _ctx(r"dni|nie|nif|documento nacional|n[uú]mero de identidad"),
           True, "check letter = TRWAGMYFPDXBNJZSQVHLCKE[number mod 23] (NIE: X/Y/Z → 0/1/2)"),
    Scheme("it-cf", "IT", "codice fiscale",
           re.compile(r"(?<![\w])[A-Z]{6}[0-9L-V]{2}[A-EHLMPR-T][0-9L-V]{2}[A-Z][0-9L-V]{3}[A-Z](?![\w])"),
           codice_fiscale_valid, _ctx(r"codice fiscale|cf|c\.f\.|tessera sanitaria"),
           True, "check letter from the odd/even position tables (mod 26); day 01-31/41-71; omocodes"),
    Scheme("fr-nir", "FR", "NIR (numéro de sécurité sociale)",
           re.compile(r"(?<![\w])[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3}[ ]?\d{2}(?![\w])"),
           nir_valid, _ctx(r"nir|ins|num[eé]ro de s[eé]curit[eé] sociale|s[eé]cu|insee|carte vitale"),
           True, "key = 97 − (13 digits mod 97), 2A/2B → 19/18; sex, month and département checked"),
    Scheme("de-kvnr", "DE", "Krankenversichertennummer (KVNR)",
           re.compile(r"(?<![\w])[A-Z] ?\d{4} ?\d{5}(?![\w])"),
           kvnr_valid, _ctx(r"kvnr|krankenversichertennummer|versichertennummer|versicherten-?nr|krankenkasse|"
                            r"egk|gesundheitskarte"),
           False, "letter → 01-26, weights 1,2,1,2…, cross sums, Σ mod 10 = check digit"),
    Scheme("de-steuer-id", "DE", "Steuer-Identifikationsnummer",
           re.compile(r"(?<![\w.,-])\d{2} ?\d{3} ?\d{3} ?\d{3}(?![\w]|[.,-]\d)"),
           steuer_id_valid, _ctx(r"steuer-?id|steuer-?identifikationsnummer|steuerliche identifikationsnummer|idnr|tin"),
           False, "ISO 7064 MOD 11,10; one digit repeated 2-3× in the first ten"),
    Scheme("be-rrn", "BE", "rijksregisternummer / numéro de registre national",
           re.compile(r"(?<![\w.,-])\d{2}[.]?\d{2}[.]?\d{2}[ .-]?\d{3}[ .-]?\d{2}(?![\w]|[.,-]\d)"),
           be_rrn_valid, _ctx(r"rijksregister(?:nummer)?|registre national|national register|niss|inss|rrn|insz"),
           True, "YYMMDD + order + key 97 − (9 digits mod 97), '2' prefixed for births ≥ 2000"),
    Scheme("pt-nif", "PT", "NIF (número de identificação fiscal)",
           re.compile(r"(?<![\w.,-])\d{3}[ ]?\d{3}[ ]?\d{3}(?![\w]|[.,-]\d)"),
           pt_nif_valid, _ctx(r"nif|contribuinte|n\.?º? ?contribuinte|identifica[cç][aã]o fiscal"),
           False, "weights 9..2, check = 11 − (Σ mod 11), ≥ 10 → 0; first digit 1-3, 5, 6, 8, 9"),
    Scheme("pt-cc", "PT", "Cartão de Cidadão",
           re.compile(r"(?<![\w])\d{8}[ ]?\d[ ]?[A-Z]{2}\d(?![\w])"),
           pt_cc_valid, _ctx(r"cart[aã]o de cidad[aã]o|cc|bi"),
           True, "letters → 10-35, double every second from the right, Σ mod 10 = 0"),
    Scheme("se-personnummer", "SE", "personnummer / samordningsnummer",
           re.compile(r"(?<![\w.,-])(?:(?:18|19|20)\d{2}|\d{2})\d{4}[-+ ]?\d{4}(?![\w]|[.,-]\d)"),
           personnummer_valid, _ctx(r"personnummer|personnr|pnr|samordningsnummer|person-?nummer"),
           False, "valid YYMMDD (day + 60 for samordningsnummer) and Luhn over the 10 digits"),
    Scheme("uk-nhs", "UK", "NHS number",
           re.compile(r"(?<![\w.,-])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\w]|[.,-]\d)"),
           nhs_valid, _ctx(r"nhs(?: ?(?:no|num|number|nr))?|nhs-?nummer|chi"),
           False, "modulus 11 with weights 10..2 (remainder 10 invalid)"),
)
SCHEME_BY_KEY = {s.key: s for s in SCHEMES}


def _strong_form(scheme: Scheme, raw: str) -> bool:
    """A weak scheme is still taken without context in its own separated spelling."""
    if scheme.key == "se-personnummer":
        return bool(re.search(r"\d[-+]\d{4}$", raw))  # 850730-1234: the hyphen is the format
    if scheme.key == "nl-bsn":
        return bool(re.fullmatch(r"\d{4}\.\d{2}\.\d{3}", raw))
    return False


@dataclass(frozen=True)
class IdHit:
    scheme: Scheme
    start: int
    end: int
    text: str
    context: str | None  # the context word that made a weak scheme count


#: One cheap pass finds where any scheme could match; the schemes' own patterns then run only
#: there (digits with separators, optionally a letter before or after; or a codice fiscale).
_CANDIDATE = re.compile(r"(?:[A-Za-z][ -]?)?\d[\d ./+-]{5,}\d(?:[ -]?[A-Za-z]{1,2}\d?)?"
                        r"|[A-Z]{6}[0-9L-V]{2}[A-Z][0-9L-V]{2}[A-Z][0-9L-V]{3}[A-Z]")


def _windows(text: str) -> list[tuple[int, int]]:
    """Merged spans around the candidates, each ending at a word boundary."""
    out: list[tuple[int, int]] = []
    for m in _CANDIDATE.finditer(text):
        lo, hi = max(0, m.start() - 2), m.end()
        while hi < len(text) and hi < m.end() + 64 and (text[hi].isalnum() or text[hi] == "_"):
            hi += 1
        hi = min(len(text), hi + 1)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def find_national_ids(text: str, header_context: str = "") -> list[IdHit]:
    """Validated national identifiers in ``text`` (possibly overlapping; the caller keeps the
    first). ``header_context``: a column header, taken as context for every value."""
    hits = []
    windows = _windows(text)
    if not windows:
        return hits
    for scheme in SCHEMES:
        header_word = scheme.context.search(header_context) if header_context else None
        for m in (m for lo, hi in windows for m in scheme.pattern.finditer(text, lo, hi)):
            raw = m.group(0)
            if not scheme.validate(scheme.normalise(raw)):
                continue
            word = header_word or _context_before(text, m.start(), scheme)
            if scheme.strong or word or _strong_form(scheme, raw):
                hits.append(IdHit(scheme, m.start(), m.end(), raw, word.group(0) if word else None))
    return hits


def _context_before(text: str, start: int, scheme: Scheme) -> re.Match[str] | None:
    lo = max(0, start - CONTEXT_WINDOW)
    line_start = max(text.rfind("\n", lo, start), text.rfind("\x00", lo, start)) + 1
    found = None
    for found in scheme.context.finditer(text, max(lo, line_start), start):
        pass
    return found


def column_scheme(values: list[str], header: str = "") -> tuple[Scheme, int] | None:
    """The scheme a whole column of bare numbers belongs to: one whose validator accepts at
    least 90 % of at least 5 distinct values (a random number passes a weak check one time in
    ten or eleven). Returns (scheme, number of valid values)."""
    distinct = sorted({v.strip() for v in values if v.strip()})
    if len(distinct) < 5:
        return None
    best = None
    for scheme in SCHEMES:
        ok = sum(1 for v in distinct if scheme.pattern.fullmatch(v) and scheme.validate(scheme.normalise(v)))
        if ok >= 0.9 * len(distinct) and (best is None or ok > best[1]):
            best = (scheme, ok)
    return best


def describe(hit: IdHit) -> str:
    why = f" after '{hit.context}'" if hit.context else ""
    return (f"'{hit.text}' is a valid {hit.scheme.country} {hit.scheme.name}{why} (check: {hit.scheme.how}). "
            "National identifiers identify people directly; remove them.")
