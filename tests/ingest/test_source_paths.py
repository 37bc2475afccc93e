"""Source paths often carry patient names ("Doe^Jane/..."): the ingest names a refused input on
stderr by its keyed identifier unless the operator opts in to raw paths."""
from __future__ import annotations

import pytest

from .conftest import run_cli, simple_tree

pytestmark = pytest.mark.ingest


@pytest.fixture
def tree_with_a_refusal(tmp_path, ct_bytes):
    src = tmp_path / "src"
    simple_tree(src, ct_bytes, patients=1, per_patient=1)
    bad = src / "Mustermann^Erika" / "not-dicom.dcm"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is no DICOM file, but its path names a patient")
    return src


def _run(capsys, src, dst, key, *extra) -> str:
    capsys.readouterr()
    rc = run_cli("run", src, dst, "--key-file", key, "--site", "S", "--project", "P", "--workers", "1", *extra)
    err = capsys.readouterr().err
    assert rc == 0, err
    return err


def test_refused_inputs_are_named_by_identifier_by_default(tmp_path, tree_with_a_refusal, key_file, capsys):
    err = _run(capsys, tree_with_a_refusal, tmp_path / "dst", key_file)
    assert "spe-ingest:" in err, "a refused input is still reported"
    assert "Mustermann" not in err, f"a raw source path (a patient's name) reached stderr:\n{err}"


def test_raw_source_paths_only_when_asked_for(tmp_path, tree_with_a_refusal, key_file, capsys):
    err = _run(capsys, tree_with_a_refusal, tmp_path / "dst", key_file, "--show-source-paths")
    assert "Mustermann^Erika/not-dicom.dcm" in err
