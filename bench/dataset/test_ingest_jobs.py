"""Ingest throughput as a Kubernetes Job on the real node, and the Indexed Job's speed-up from
1 to 2 shards, beside the CLI on the same files (bench/dataset/README.md).

    scripts/in-netns.sh .venv/bin/pytest bench/dataset/test_ingest_jobs.py -s -p no:cacheprovider
    (SPE_BENCH_FILES=600 for more files; the figures go to stdout and bench/results/dataset-jobs.json)

Each arm ingests the same source (SPE_BENCH_FILES CT instances from pydicom's CT_small.dcm, one
worker per pod, one CPU per pod) into a fresh claim:

- cli: ``spe-ingest run --workers 1`` on this machine, straight from the directory;
- job-1: a Dataset with ``parallelism: 1`` — one Job, apply → Ready;
- job-2: a Dataset with ``parallelism: 2`` — an Indexed Job of 2 shards, then the merge Job.

Times are wall clock from the Dataset's creation to Ready as the API shows it (they include pod
start-up, the claim's provisioning by the local-path helper pod and the status round trips).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spe_dev.sourcedata import SourceSpec, write_source

pytestmark = [pytest.mark.dataset, pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
FILES = int(os.environ.get("SPE_BENCH_FILES", "400"))


def test_job_throughput_and_shard_speedup(dataset_env, tmp_path):
    env = dataset_env
    per_patient = 4
    spec = SourceSpec(patients=FILES // per_patient, per_patient=per_patient, classes=2)
    # The CLI arm: same files, same worker count, on the host.
    src = tmp_path / "src"
    write_source(src, spec, uid_root=7)
    key = tmp_path / "key"
    key.write_bytes(secrets.token_bytes(48))
    t0 = time.monotonic()
    cli = subprocess.run([sys.executable, "-m", "spe_ingest.cli", "run", str(src), str(tmp_path / "dst"),
                          "--key-file", str(key), "--site", "s", "--project", "p", "--workers", "1",
                          "--k-threshold", "2"], capture_output=True, text=True)
    cli_s = time.monotonic() - t0
    assert cli.returncode == 0, cli.stderr
    results = {"files": spec.files, "cli": {"seconds": round(cli_s, 1), "files_per_s": round(spec.files / cli_s, 1)}}
    keys = env.keys("bench")
    for shards in (1, 2):
        claim = f"src-bench-{shards}"
        env.source_claim(claim, spec, uid_root=7)
        name = f"bench-{shards}"
        t0 = time.monotonic()
        env.apply(env.dataset_body(name, claim, keys, parallelism=shards))
        ds = env.wait_phase(name, ("Ready", "Failed"), timeout=1200)
        took = time.monotonic() - t0
        assert ds["status"]["phase"] == "Ready", ds["status"]
        assert ds["status"]["counts"]["accepted"] == spec.files
        results[f"job-{shards}"] = {"seconds": round(took, 1), "files_per_s": round(spec.files / took, 1)}
    results["speedup_2_over_1"] = round(results["job-1"]["seconds"] / results["job-2"]["seconds"], 2)
    results["job1_over_cli"] = round(results["job-1"]["seconds"] / results["cli"]["seconds"], 2)
    results["load_average"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    out = ROOT / "bench" / "results" / "dataset-jobs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
