"""The few facts from the DICOM data dictionary that the ingest needs at run time.

Importing pydicom costs about a second of start-up (it pulls in numpy and
its pixel handlers), which is most of a small run.  The run time needs only
keyword -> tag, tag -> VR (for implicit VR files) and the image storage SOP
classes, so ``rules/build_table.py`` extracts them from pydicom's dictionary
into ``rules/dictionary.json``, and ``--check`` fails when it is stale.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "rules" / "dictionary.json"


@lru_cache(maxsize=1)
def _data() -> tuple[dict[str, int], dict[int, str], frozenset[str]]:
    doc = json.loads(DATA.read_text())
    keywords = {k: int(t, 16) for k, t in doc["keywords"].items()}
    vrs = {int(t, 16): vr for t, vr in doc["vr"].items()}
    return keywords, vrs, frozenset(doc["image_storage"])


def tag(keyword: str) -> int | None:
    return _data()[0].get(keyword)


def vr(tag_: int) -> str | None:
    return _data()[1].get(tag_)


def is_image_storage(uid: str) -> bool:
    return uid in _data()[2]
