"""Names of people (WARN) in text, CSV cells, SVG text, notebook outputs and PDF text; author
lists and references are INFO; statistical eponyms and ordinary capitalised words are not names."""

from __future__ import annotations

import pytest

from spe_egress.checks import CheckPolicy, FileInput, Severity, run_checks
from spe_egress.checks.names import find_names, name_lists

from .corpus import AUTHORS_MD, METHODS_TXT, csv, notebook, pdf, stream

pytestmark = pytest.mark.egress
CHECK = "identifier.person-name"
POLICY = CheckPolicy(allowed_types=["txt", "csv", "svg", "ipynb", "pdf", "markdown"])


def names_in(name: str, data: bytes) -> list:
    report = run_checks([FileInput(name, data)], POLICY)
    return [f for f in report.files[0].findings if f.check == CHECK]


def test_the_lists_cover_the_eu_languages():
    given, family = name_lists()
    for g in ("anna", "pieter", "marie", "lucia", "jan", "giulia", "sofía", "joão", "åsa", "agnieszka"):
        assert g in given, g
    for s in ("schmidt", "jansen", "dubois", "rossi", "garcía", "silva", "andersson", "kowalski", "vries"):
        assert s in family, s


@pytest.mark.parametrize("text,found", [
    ("Seen today: Anna Schmidt, 67.", "Anna Schmidt"),
    ("Case 3 (Pieter van der Berg) relapsed.", "Pieter van der Berg"),
    ("Referred by Dr. Müller.", "Dr. Müller"),
    ("Patient Jansen consented.", "Patient Jansen"),
    ("Mme Dubois, 54 ans", "Mme Dubois"),
    ("Dubois, Marie (id 17)", "Dubois, Marie"),
    ("Giulia Bianchi-Rossi, 71", "Giulia Bianchi-Rossi"),
])
def test_names_in_text(text, found):
    hits = names_in("note.txt", text.encode())
    assert [(text[f.location["start"]:f.location["end"]], f.severity) for f in hits] == [(found, Severity.WARN)]


@pytest.mark.parametrize("text", [
    METHODS_TXT.decode(),
    "Random Forest and Support Vector Machines in Python with Scikit Learn.",
    "Table 2 shows the Mean Dice Score per Site for Cohort North.",
    "anna schmidt (lower case is not a name the detector reports)",
    "The Grace period ends in May.",
])
def test_not_names(text):
    assert names_in("t.txt", text.encode()) == []


def test_author_list_and_references_are_info_not_warn():
    hits = names_in("README.md", AUTHORS_MD)
    assert {AUTHORS_MD.decode()[f.location["start"]:f.location["end"]] for f in hits} >= {
        "Pieter van der Berg", "Marie Dubois", "Lucia Bianchi", "Anna Schmidt"}
    assert all(f.severity is Severity.INFO for f in hits)
    assert run_checks([FileInput("README.md", AUTHORS_MD)], POLICY).verdict == "pass"
    refs = b"## References\n1. Anna Schmidt, Pieter van der Berg. Federated lung CT. Radiology 2025.\n"
    assert [f.severity for f in names_in("refs.md", refs)] == [Severity.INFO, Severity.INFO]


def test_names_in_csv_cells():
    hits = names_in("t.csv", csv(["case", "comment"], [["1", "called Anna Schmidt"], ["2", "stable"]]))
    assert [(f.location["row"], f.location["column"], f.severity) for f in hits] == [(0, "comment", Severity.WARN)]
    # a column of names: one listed name per cell is enough
    hits = names_in("t.csv", csv(["patient_name", "n"], [["Jansen", 12], ["Rossi", 14], ["unknown", 3]]))
    assert [f.location["row"] for f in hits] == [0, 1]
    # but a single capitalised word in an ordinary column is not
    assert names_in("t.csv", csv(["site", "n"], [["Rossi", 12], ["Jansen", 14]])) == []


def test_names_in_svg_text():
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg"><text x="1" y="2">Outlier: Lucia Bianchi</text>'
           b'<text x="1" y="9">Dice by site</text></svg>')
    assert [f.severity for f in names_in("fig.svg", svg)] == [Severity.WARN]


def test_names_in_notebook_outputs():
    nb = notebook([stream("worst case: Marie Dubois\n")])
    hits = names_in("a.ipynb", nb)
    assert len(hits) == 1 and nb.decode()[hits[0].location["start"]:hits[0].location["end"]] == "Marie Dubois"


def test_names_in_pdf_text():
    hits = names_in("r.pdf", pdf(["Discussed with patient Lucia Bianchi."]))
    assert [(f.severity, f.location["page"], f.location["excerpt"][1]) for f in hits] == [
        (Severity.WARN, 1, "Lucia Bianchi")]


def test_find_names_spans_do_not_overlap():
    hits = find_names("Patient Anna Schmidt and Dr. Anna Schmidt")
    spans = [(h.start, h.end) for h in hits]
    assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
