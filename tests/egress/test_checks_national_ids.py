"""National identifiers with check digits: each scheme's published example numbers are found
in text (plain, spaced, dotted, dashed) and in table columns; a wrong check digit, or a
weak scheme's bare number without context, is not."""

from __future__ import annotations

import pytest

from spe_egress.checks import CheckPolicy, FileInput, Severity, find_identifiers, run_checks
from spe_egress.checks import national_ids as nid

pytestmark = pytest.mark.egress
CHECK = "identifier.national-id"


def ids_in(text: str, header: str = "") -> list[tuple[str, str]]:
    return [(text[h.start:h.end], h.message) for h in find_identifiers(text, header=header) if h.check == CHECK]


# (scheme, text with context, the number as written)
FOUND = [
    ("nl-bsn", "BSN: 111222333", "111222333"),
    ("nl-bsn", "burgerservicenummer 1234.56.782", "1234.56.782"),
    ("nl-bsn", "patient (bsn 123 456 782) seen", "123 456 782"),
    ("es-dni", "DNI 12345678Z", "12345678Z"),
    ("es-dni", "titular 12345678-Z", "12345678-Z"),
    ("es-dni", "NIE X1234567L", "X1234567L"),
    ("es-dni", "NIE X-1234567-L", "X-1234567-L"),
    ("it-cf", "codice fiscale RSSMRA85T10A562S", "RSSMRA85T10A562S"),
    ("it-cf", "paziente RSSMRA85T10A562S", "RSSMRA85T10A562S"),
    ("fr-nir", "NIR 2 55 08 14 168 025 38", "2 55 08 14 168 025 38"),
    ("fr-nir", "sécu 255081416802538", "255081416802538"),
    ("de-kvnr", "KVNR A123456780", "A123456780"),
    ("de-kvnr", "Versichertennummer A 1234 56780", "A 1234 56780"),
    ("de-steuer-id", "Steuer-ID 86 095 742 719", "86 095 742 719"),
    ("de-steuer-id", "IdNr 65929970489", "65929970489"),
    ("be-rrn", "rijksregisternummer 85.07.30-033.28", "85.07.30-033.28"),
    ("be-rrn", "numéro 85073003328 du registre", "85073003328"),
    ("pt-nif", "NIF 123 456 789", "123 456 789"),
    ("pt-nif", "contribuinte 123456789", "123456789"),
    ("pt-cc", "Cartão de Cidadão 00000000 0 ZZ4", "00000000 0 ZZ4"),
    ("se-personnummer", "personnummer 811218-9876", "811218-9876"),
    ("se-personnummer", "pnr 198112189876", "198112189876"),
    ("se-personnummer", "född 811218-9876 i Lund", "811218-9876"),  # the hyphenated form needs no word
    ("uk-nhs", "NHS number 943 476 5919", "943 476 5919"),
    ("uk-nhs", "NHS no. 943-476-5919", "943-476-5919"),
    ("uk-nhs", "nhs 9434765919", "9434765919"),
]


@pytest.mark.parametrize("scheme,text,number", FOUND, ids=[f"{s}:{n}" for s, _, n in FOUND])
def test_valid_numbers_are_found_with_the_scheme_named(scheme, text, number):
    hits = ids_in(text)
    assert [h for h, _ in hits] == [number]
    assert nid.SCHEME_BY_KEY[scheme].name in hits[0][1]


# A check digit changed (or an impossible structure): never flagged, context or not.
WRONG = ["BSN 111222334", "DNI 12345678A", "NIE X1234567M", "codice fiscale RSSMRA85T10A562T",
         "NIR 2 55 08 14 168 025 39", "KVNR A123456781", "Steuer-ID 86095742718", "Steuer-ID 01234567890", "Steuer-ID 11134567890",
         "rijksregisternummer 85.07.30-033.29", "NIF 123456780", "Cartão de Cidadão 00000000 0 ZZ5",
         "personnummer 811218-9877", "personnummer 811318-9876", "NHS number 943 476 5918", "BSN 000000000"]


@pytest.mark.parametrize("text", WRONG)
def test_a_wrong_check_digit_is_not_flagged(text):
    assert ids_in(text) == []


# Weak schemes (a random number passes one time in ten or eleven) need a word naming them.
@pytest.mark.parametrize("text", ["cohort size 111222333 voxels", "run 9434765919 finished", "seed 86095742719",
                                  "total 123456789", "id A123456780 processed"])
def test_weak_schemes_need_context(text):
    assert ids_in(text) == []


def test_context_word_must_be_on_the_same_line_and_near():
    assert ids_in("BSN\n111222333") == []
    assert ids_in("BSN " + "x" * 60 + " 111222333") == []
    assert [n for n, _ in ids_in("111222333", header="bsn")] == ["111222333"]  # a column header is context


def test_benign_numbers_are_not_national_ids():
    text = ("412 patients, 1,204 scans; p = 0.0004; version 2.4.1; ORCID 0000-0002-1825-0097; DOI "
            "10.1148/radiol.2021204567; grant 101057062; accession GSE123456; 2021-03-04; +31 24 361 1111; "
            "ISBN 978-3-16-148410-0; AUC 0.8734; 12345678901234567890")
    assert ids_in(text) == []


def table(csv: str, **policy) -> list:
    report = run_checks([FileInput("t.csv", csv.encode())], CheckPolicy(**policy))
    return [f for f in report.files[0].findings if f.check == CHECK]


def test_a_column_named_for_the_scheme_flags_every_valid_cell():
    found = table("bsn,site\n111222333,A\n123456782,B\n111222334,C\n")
    assert [(f.location["row"], f.location["column"], f.severity) for f in found] == [
        (0, "bsn", Severity.BLOCK), (1, "bsn", Severity.BLOCK)]  # row 2 fails the 11-test


def test_a_column_of_valid_numbers_is_flagged_whatever_its_header():
    values = ["367418253", "209494177", "762984594", "278086998", "487824738"]
    found = table("nr,site\n" + "".join(f"{v},A\n" for v in values))
    assert len(found) == 5 and all("5 of the 5 distinct numbers" in f.message for f in found)
    assert "burgerservicenummer" in found[0].message


def test_a_column_of_ordinary_numbers_is_not():
    values = ["367418253", "209494178", "762984595", "278086999", "487824739", "100200300"]
    assert table("nr,site\n" + "".join(f"{v},A\n" for v in values)) == []
    assert table("site,patients\nA,111222333\nB,40\n") == []  # one valid number alone, no context


def test_ids_in_text_cells_and_spaced_forms_in_a_table():
    found = table("documento,centro\n12345678Z,Madrid\nX1234567L,Sevilla\nAB12,Bilbao\n")
    assert [(f.location["row"], f.location["start"], f.location["end"]) for f in found] == [(0, 0, 9), (1, 0, 9)]
    found = table("nhs_number,n\n943 476 5919,12\n")
    assert len(found) == 1 and found[0].location["column"] == "nhs_number"


def test_every_scheme_is_in_the_readme():
    from pathlib import Path
    readme = (Path(__file__).parents[2] / "egress" / "README.md").read_text()
    for scheme in nid.SCHEMES:
        assert scheme.name in readme, scheme.key
