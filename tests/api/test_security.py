"""Security hardening of the API: quantities are positive quantities in Python as in
the schema, names fit what derives from them, and stopping access needs no webhook."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spe_api import DataPermit, Dataset, Tool, Workspace
from spe_api.crdgen import openapi_schema
from spe_operator.admission.configuration import WEBHOOKS, build_webhook_configuration

from .helpers import edit, example

pytestmark = pytest.mark.api


@pytest.mark.parametrize("key, path, value", [
    ("lung-ct", "spec__storage__size", -100),
    ("lung-ct", "spec__storage__size", 0),
    ("lung-ct", "spec__storage__size", "0Gi"),
    ("tool", "spec__defaultResources__cpu", -2),
    ("workspace", "spec__resources__memory", "0"),
    ("permit", "spec__exportPolicy__maxFileSize", 0),
])
def test_zero_and_negative_quantities_do_not_parse(key, path, value):
    model = {"lung-ct": Dataset, "tool": Tool, "workspace": Workspace, "permit": DataPermit}[key]
    with pytest.raises(ValidationError):
        model.from_manifest(edit(example(key), **{path: value}))


def test_a_ceiling_of_zero_means_none():
    permit = DataPermit.from_manifest(edit(example("permit"), spec__ceilings__cpu=0))
    assert permit.spec.ceilings.cpu == "0"


def _quantity_rules(schema, path=""):
    """(path, rules) of every int-or-string node of a schema."""
    out = []
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-int-or-string"):
            out.append((path, [r["rule"] for r in schema.get("x-kubernetes-validations", [])]))
        for key, sub in schema.get("properties", {}).items():
            out += _quantity_rules(sub, f"{path}.{key}")
        if isinstance(schema.get("items"), dict):
            out += _quantity_rules(schema["items"], f"{path}[]")
    return out


@pytest.mark.parametrize("kind", [DataPermit, Dataset, Tool, Workspace])
def test_every_quantity_in_the_schema_checks_its_sign(kind):
    rules = _quantity_rules(openapi_schema(kind))
    assert rules, "no quantities found"
    for path, found in rules:
        assert any("type(self)" in r and "self >" in r for r in found), f"{path}: {found}"


@pytest.mark.parametrize("kind, text", [(DataPermit, "DNS-1123 label"), (DataPermit, "'system' is reserved"),
                                        (Workspace, "DNS-1035 label"), (Dataset, "DNS-1123 label"),
                                        (Tool, "DNS-1123 label")])
def test_names_are_checked_for_what_derives_from_them(kind, text):
    assert any(text in r["message"] for r in openapi_schema(kind)["x-kubernetes-validations"])


def test_suspension_revocation_and_stops_skip_the_webhook():
    """The webhook is fail-closed; with the operator down it would refuse a revocation. Its
    matchConditions let through updates that only take access away."""
    config = build_webhook_configuration(url="https://127.0.0.1:1")
    conditions = {h["name"]: {c["name"]: c["expression"] for c in h.get("matchConditions", [])}
                  for h in config["webhooks"]}
    permit = conditions[next(w.name for w in WEBHOOKS if w.plural == "datapermits")]
    assert any("revoked" in e and "suspended" in e for e in permit.values()), permit
    workspace = conditions[next(w.name for w in WEBHOOKS if w.plural == "workspaces")]
    assert any("running" in e for e in workspace.values()), workspace
