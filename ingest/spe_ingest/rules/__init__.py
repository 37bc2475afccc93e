"""The PS3.15 Table E.1-1 rule table and its resolution into actions."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).with_name("ps3.15_e1-1.tsv")

# option name (command line) -> table column
OPTION_COLUMNS = {
    "retain-safe-private": "rtn_safe_priv",
    "retain-uids": "rtn_uids",
    "retain-device-identity": "rtn_dev_id",
    "retain-institution-identity": "rtn_inst_id",
    "retain-patient-characteristics": "rtn_pat_chars",
    "retain-longitudinal-full-dates": "rtn_long_full_dates",
    "retain-longitudinal-modified-dates": "rtn_long_modif_dates",
    "clean-descriptors": "clean_desc",
    "clean-structured-content": "clean_struct_cont",
    "clean-graphics": "clean_graph",
}
# Options that act on pixel data, not on attributes: no column of Table E.1-1.
PIXEL_OPTIONS = ("clean-pixel-data",)
OPTIONS = tuple(OPTION_COLUMNS) + PIXEL_OPTIONS


@dataclass(frozen=True, slots=True)
class Row:
    tag: str            # "GGGG,EEEE" or a mask such as "60xx,3000"
    keyword: str
    name: str
    vr: str
    basic: str
    cells: dict         # column -> "K" / "C" / ""

    @property
    def tag_int(self) -> int | None:
        try:
            g, e = self.tag.split(",")
            return int(g, 16) << 16 | int(e, 16)
        except ValueError:
            return None


@lru_cache(maxsize=1)
def load_rows() -> tuple[Row, ...]:
    rows = []
    with TABLE.open(newline="") as fh:
        lines = (line for line in fh if not line.startswith("#"))
        for rec in csv.DictReader(lines, delimiter="\t"):
            cells = {c: rec[c] for c in OPTION_COLUMNS.values()}
            rows.append(Row(rec["tag"], rec["keyword"], rec["name"], rec["vr"],
                            rec["basic"], cells))
    return tuple(rows)


def effective_code(row: Row, options: frozenset[str]) -> str:
    """The action for a row under the chosen options: K beats C beats basic."""
    codes = {row.cells[OPTION_COLUMNS[o]] for o in options if o in OPTION_COLUMNS} - {""}
    if "K" in codes:
        return "K"
    if "C" in codes:
        return "C"
    return row.basic
