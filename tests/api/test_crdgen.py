"""The generated CRDs: no drift from the models, and structural as the API server requires."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spe_api import KINDS
from spe_api.crdgen import crd, rendered_crds, write_crds

from .helpers import ROOT

pytestmark = pytest.mark.api

CRD_DIRS = [ROOT / "crds", ROOT / "manifests" / "base" / "crds"]


@pytest.mark.parametrize("crd_dir", CRD_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_crds_directory_matches_the_models(crd_dir):
    expected = rendered_crds()
    on_disk = {p.name: p.read_text() for p in crd_dir.glob("*.yaml")}
    stale = sorted(set(on_disk) - set(expected))
    missing = sorted(set(expected) - set(on_disk))
    changed = sorted(n for n in set(expected) & set(on_disk) if expected[n] != on_disk[n])
    assert not (stale or missing or changed), (
        f"{crd_dir} is out of date (stale {stale}, missing {missing}, changed {changed}): "
        f"run `spe-operator crds -o {crd_dir.relative_to(ROOT)}`")


def test_write_crds_is_idempotent_and_drops_stale(tmp_path: Path):
    (tmp_path / "spe.ehds.io_old.yaml").write_text("stale")
    first = write_crds(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in first)
    mtimes = {p: p.stat().st_mtime_ns for p in first}
    write_crds(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in first} == mtimes


def _walk(schema, path="$"):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_schema_is_structural_and_documented(kind):
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "allOf" not in node and "oneOf" not in node and "title" not in node, path
        assert node.get("default", 0) is not None, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, f"{path}: anyOf only for int-or-string"
        else:
            assert "type" in node, f"{path} has no type"
        if node.get("type") == "object" and path != "$.metadata":
            assert "properties" in node or "additionalProperties" in node, path
        if path.startswith(("$.spec", "$.status")) and path.count(".") >= 2 and not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description (kubectl explain shows it)"
        if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
            pytest.fail(f"{path}: JSON-Schema-2020 exclusiveMinimum in an OpenAPI v3.0 schema")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_names_columns_and_subresource(kind):
    body = crd(kind)
    names = body["spec"]["names"]
    assert names["categories"] == ["spe"] and names["shortNames"] == list(kind.SHORT_NAMES)
    version = body["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]
    columns = version["additionalPrinterColumns"]
    assert any(c["jsonPath"] == ".status.phase" for c in columns)
    assert columns[-1]["jsonPath"] == ".metadata.creationTimestamp"
    for column in columns:
        if column["jsonPath"].startswith(".metadata"):
            continue
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]  # every column reads a field of our own schema
        assert column["type"] in ("string", "integer", "boolean", "date", "number")


def test_key_rules_are_in_the_schema():
    text = "".join(rendered_crds().values())
    for needle in ["self == oldSelf", "self.notAfter > self.notBefore", "@sha256:", "x-kubernetes-int-or-string",
                   "format: date-time", "self.metadata.name.size() <= 59", "exists_one"]:
        assert needle in text, needle
    permit = crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert permit["properties"]["exportPolicy"]["default"] == {}
    assert permit["properties"]["exportPolicy"]["properties"]["reviewersRequired"]["default"] == 2
    assert permit["properties"]["exportPolicy"]["properties"]["disclosure"]["properties"]["dominance"]["properties"]["share"]["default"] == 0.9


def test_rendered_yaml_is_loadable():
    for name, text in rendered_crds().items():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition", name


YAML11_BOOLEANS = {"y", "n", "yes", "no", "on", "off", "true", "false"}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_no_field_is_named_like_a_yaml11_boolean(kind):
    # kubectl's YAML 1.1 reads a bare `n:` key as false: a field called n can never be set.
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for name in node.get("properties", {}):
            assert name.lower() not in YAML11_BOOLEANS, f"{path}.{name}"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_strings_and_lists_are_bounded(kind):
    # CEL cost estimation needs bounds; unbounded strings under a rule make the CRD unacceptable.
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        if path.startswith("$.spec") and node.get("type") == "string":
            assert "maxLength" in node or "enum" in node or node.get("format") == "date-time", path
        if path.startswith("$.spec") and node.get("type") == "array":
            assert "maxItems" in node, path
