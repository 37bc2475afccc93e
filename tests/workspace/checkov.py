"""Running checkov (installed by scripts/deps.d/checkov.sh in its own venv) on rendered manifests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".cache" / "checkov-venv" / "bin" / "checkov"

# Checks the notebook server does not pass, each with why that is the right call here.
SKIPS: dict[str, str] = {
    "CKV_K8S_40": (
        "high UID: the catalogue's notebook images (Jupyter Docker Stacks) run as jovyan, UID 1000, which "
        "owns their files; the UID is the operator setting workspace_uid, and runAsNonRoot, no privilege "
        "escalation, no capabilities, seccomp and a read-only root bound what it can do on the host"),
}
# Only where the rendered set has no NetworkPolicy (unit tests): the permit's namespace has them.
NETWORK_POLICY_SKIP = {
    "CKV2_K8S_6": ("pod without NetworkPolicy: the notebook's policies are the permit namespace's default-deny "
                   "and allow rules (DataPermit reconciler), checked in the cluster test with them included"),
}


def run_checkov(manifests: list[dict[str, Any]], tmp_path: Path, skips: dict[str, str]) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `bash scripts/deps.d/checkov.sh` (or `bash scripts/test-deps.sh`)",
                    pytrace=False)
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    proc = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", "kubernetes", "-o", "json", "--compact",
         "--skip-download",  # never fetch guideline mappings from the vendor (the suite has no network)
         "--skip-check", ",".join(skips)],
        capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):
        pytest.fail(f"checkov failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum((r.get("summary") or {}).get("passed", 0) for r in reports)
    return {"failed": failed, "passed": passed, "summary": [r.get("summary") for r in reports]}


def describe(failed: list[dict[str, Any]]) -> str:
    return "\n".join(f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in failed)


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """A live object without server-owned fields (what `kubectl get -o yaml` minus status)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    md = out.get("metadata", {})
    out["metadata"] = {k: v for k, v in md.items() if k in ("name", "namespace", "labels", "annotations")}
    return out
