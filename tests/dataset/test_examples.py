"""``kubectl apply -f examples/dataset-*.yaml``, unchanged, with the example source data made
here (sourcedata.EXAMPLE_SOURCES: the claims and paths the examples name, in the class they
name), yields Ready Datasets."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.fixtures.operator import TEST_STORAGE_CLASS

ROOT = Path(__file__).resolve().parents[2]
from spe_dev.sourcedata import (EXAMPLE_PSEUDONYM_KEYS, EXAMPLE_SIGNING_KEYS, EXAMPLE_SIGNING_SECRET, EXAMPLE_SOURCES)

pytestmark = pytest.mark.dataset


def test_example_datasets_become_ready(dataset_env, cluster):
    env = dataset_env
    for name, key in EXAMPLE_PSEUDONYM_KEYS.items():
        env.secret(name, {key: secrets.token_bytes(48)})
    env.secret(EXAMPLE_SIGNING_SECRET, {key: env.signing_pem for key in EXAMPLE_SIGNING_KEYS})
    for uid_root, (dataset, (claim, path, spec)) in enumerate(sorted(EXAMPLE_SOURCES.items()), start=10):
        env.source_claim(claim, spec, path=path, storage_class=TEST_STORAGE_CLASS, uid_root=uid_root)
    for dataset in EXAMPLE_SOURCES:
        env.made.append(dataset)
        cluster.kubectl("apply", "-f", str(ROOT / "examples" / f"dataset-{dataset}.yaml"), check=True)
    for dataset, (_claim, _path, spec) in EXAMPLE_SOURCES.items():
        ds = env.wait_phase(dataset, ("Ready", "Failed", "Quarantined"), timeout=600)
        st = ds["status"]
        assert st["phase"] == "Ready", (dataset, st)
        assert st["counts"]["patients"] == spec.patients
        assert st["counts"]["accepted"] == spec.files
        assert st["kAnonymity"] >= ds["spec"]["kAnonymity"]["threshold"]
