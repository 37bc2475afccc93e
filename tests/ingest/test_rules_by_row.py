"""Rule-by-rule tests generated from the checked-in table.

One data set carries a planted value in every attribute of Table E.1-1 that
pydicom can encode; it is de-identified once per column (the basic profile,
then each option alone) and every row is checked against its action code.
"""
from __future__ import annotations

import functools
import io

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from spe_ingest import rules
from spe_ingest.deid import Deidentifier
from spe_ingest.keys import Keys, domain_key
from spe_ingest.profile import PSEUDO_TAGS, compile_profile

from .conftest import dataset_from, to_bytes

pytestmark = pytest.mark.ingest

SKIP_GROUPS = (0x0000, 0x0002)   # command set, and the file meta that is rebuilt
SITE = "SITE-A"


def _planted(row, idx: int):
    vr = row.vr.split(" or ")[0]
    token = f"PV{idx:04d}"
    return vr, {
        "PN": f"{token}^PLANTED", "DA": "20180315", "TM": "101112",
        "DT": "20180315101112", "AS": "045Y", "DS": "12.5", "IS": "7",
        "UI": f"1.2.826.0.1.3680043.8.498.{idx}", "US": 7, "SS": 7, "UL": 7, "SL": 7,
        "FL": 1.5, "FD": 1.5, "AT": 0x00100010, "UR": f"http://x.example/{token}",
        "OB": b"\x01\x02", "OW": b"\x01\x02", "UN": b"\x01\x02", "OF": b"\x00" * 4,
        "OD": b"\x00" * 8, "OL": b"\x00" * 4, "OV": b"\x00" * 8, "SV": 7, "UV": 7,
    }.get(vr, token)


def _rows():
    out = []
    for idx, row in enumerate(rules.load_rows()):
        tag = row.tag_int
        if tag is None or tag >> 16 in SKIP_GROUPS or not row.vr:
            continue
        out.append((idx, row))
    return out


ROWS = _rows()


@functools.lru_cache(maxsize=1)
def _source(ct: bytes) -> tuple[bytes, dict]:
    ds = dataset_from(ct)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    planted = {}
    for idx, row in ROWS:
        vr, value = _planted(row, idx)
        tag = Tag(row.tag_int)
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = "121008"
            item.CodingSchemeDesignator = "DCM"
            item.PatientName = f"PV{idx:04d}^NESTED"
            item.PatientComments = f"PV{idx:04d} nested comment"
            ds[tag] = DataElement(tag, "SQ", Sequence([item]))
            planted[row.tag_int] = ("SQ", f"PV{idx:04d}")
        else:
            ds[tag] = DataElement(tag, vr, value)
            planted[row.tag_int] = (vr, value)
    return to_bytes(ds), planted


@functools.lru_cache(maxsize=None)
def _output(ct: bytes, option: str | None) -> Dataset:
    data, _ = _source(ct)
    profile = compile_profile("basic", [option] if option else [])
    deid = Deidentifier(profile, Keys(domain_key(b"k" * 32, "P", SITE)), SITE)
    res = deid.run(data)
    assert res.outcome == "accepted", res
    return pydicom.dcmread(io.BytesIO(res.data))


def _text(elem) -> str:
    if elem.VR == "SQ":
        return repr([str(item) for item in elem.value])
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _check(row, code: str, out: Dataset, planted: dict) -> None:
    vr, value = planted[row.tag_int]
    elem = out.get(row.tag_int)
    original = str(value)
    if code == "K":
        assert elem is not None, "K: must be kept"
        if vr == "SQ":
            assert len(elem.value) == 1
            assert value not in _text(elem), "nested identifying values must go"
        elif vr in ("OB", "OW", "UN", "OF", "OD", "OL", "OV"):
            assert elem.value[:len(value)] == value
        else:
            assert original in _text(elem) or str(elem.value) == original
        return
    if code == "X":
        assert elem is None, "X: must be removed"
        return
    if elem is None:
        assert code != "U" or vr == "SQ", f"{code}: must be present"
        assert code not in ("Z", "D", "C") or row.tag_int in (0x00400555,), \
            f"{code}: must be present"
        return
    text = _text(elem)
    if code == "C" and vr in ("TM",):
        return   # times are kept when dates are modified (intervals survive)
    if code == "C" and vr not in ("DA", "DT", "SQ"):
        return   # cleaning text that holds no known identifier keeps it
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV", "IS", "DS",
              "OB", "OW", "UN", "OF", "OD", "OL", "OV"):
        return   # numbers planted as themselves cannot carry the token
    if vr == "SQ":
        assert value not in text, f"{code}: nested planted value survived"
        return
    assert original not in text, f"{code}: planted value survived: {text!r}"
    if code == "Z" and row.tag_int not in PSEUDO_TAGS:
        assert text == "", "Z: must be empty"
    if code == "U" or (code in ("D", "X/D") and vr == "UI"):
        assert text.startswith("2.25."), "U: must be a 2.25 UID"
    if code in ("D",) and vr not in ("UI",):
        assert text, "D: must hold a dummy value"


@pytest.mark.parametrize("idx,row", ROWS, ids=[f"{r.tag}-{r.keyword or r.name}" for _, r in ROWS])
def test_basic_profile_row(ct_bytes, idx, row):
    _, planted = _source(ct_bytes)
    _check(row, row.basic, _output(ct_bytes, None), planted)


OPTION_CASES = [(option, idx, row) for option, column in rules.OPTION_COLUMNS.items()
                for idx, row in ROWS if row.cells[column]]


@pytest.mark.parametrize(
    "option,idx,row", OPTION_CASES,
    ids=[f"{o}-{r.tag}-{r.keyword or r.name}" for o, _, r in OPTION_CASES])
def test_option_row(ct_bytes, option, idx, row):
    _, planted = _source(ct_bytes)
    code = rules.effective_code(row, frozenset([option]))
    _check(row, code, _output(ct_bytes, option), planted)
