"""Shared helpers of the API tests: the examples as dicts, and deep edits of manifests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

EXAMPLE_FILES = {
    "prostate-mr": "dataset-prostate-mr.yaml",
    "lung-ct": "dataset-lung-ct.yaml",
    "tool": "tool-jupyterlab.yaml",
    "permit": "datapermit.yaml",
    "workspace": "workspace.yaml",
    "review": "outputreview.yaml",
}


def example(key: str) -> dict[str, Any]:
    """A fresh copy of one example manifest."""
    return yaml.safe_load((EXAMPLES / EXAMPLE_FILES[key]).read_text())


_DELETE = object()
DELETE = _DELETE


def edit(manifest: dict[str, Any], **paths: Any) -> dict[str, Any]:
    """A copy with dotted paths set (``spec__resources__cpu="99"``; ``DELETE`` removes a key;
    a list index is a number: ``spec__members__0="x"``)."""
    out = copy.deepcopy(manifest)
    for dotted, value in paths.items():
        keys = dotted.split("__")
        node: Any = out
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return out
