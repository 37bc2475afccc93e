"""The Tool catalogue's status: phase and ToolApproved condition written from the spec."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from spe_api import Tool, ToolPhase
from spe_operator.handlers.tools import tool_status

pytestmark = pytest.mark.api

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tool-jupyterlab.yaml"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


@pytest.mark.parametrize("change, phase, reason", [
    ({}, ToolPhase.APPROVED, "Approved"),
    ({"revoked": True, "revocationReason": "CVE-2026-1234 in the base image"}, ToolPhase.REVOKED, "ToolRevoked"),
    ({"approval": None}, ToolPhase.PENDING, "NotApproved"),
])
def test_status_follows_the_spec(change, phase, reason):
    body = _example()
    body["spec"].update(change)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    got_phase, patch = tool_status(Tool.from_manifest(body), NOW)
    assert got_phase == phase
    (cond,) = patch["status"]["conditions"]
    assert patch["status"]["phase"] == phase.value
    assert (cond["type"], cond["reason"]) == ("ToolApproved", reason)
    assert cond["status"] == ("True" if phase == ToolPhase.APPROVED else "False")


def _phase(cluster, name: str) -> str | None:
    out = cluster.kubectl("get", "tool", name, "-o", "json", check=True).stdout
    return json.loads(out).get("status", {}).get("phase")


def _wait_phase(cluster, name: str, wanted: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (phase := _phase(cluster, name)) != wanted:
        assert time.monotonic() < deadline, f"tool {name} phase {phase!r}, wanted {wanted}"
        time.sleep(0.2)


def test_operator_writes_tool_phase_and_revocation(cluster, operator):
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                    str(EXAMPLE.parents[1] / "crds" / "spe.ehds.io_tools.yaml"), check=True)
    body = _example()
    name = f"tool-status-{uuid.uuid4().hex[:6]}"
    body["metadata"]["name"] = name
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(body), check=True)
    try:
        _wait_phase(cluster, name, "Approved")
        cluster.kubectl("patch", "tool", name, "--type=merge", "-p",
                        json.dumps({"spec": {"revoked": True, "revocationReason": "critical CVE in base image"}}),
                        check=True)
        _wait_phase(cluster, name, "Revoked")
        events = cluster.kubectl("get", "events", "-A", "--field-selector", f"involvedObject.name={name}",
                                 "-o", "json", check=True).stdout
        reasons = {e["reason"] for e in json.loads(events)["items"]}
        assert {"ToolApproved", "ToolRevoked"} <= reasons
    finally:
        cluster.kubectl("delete", "tool", name, "--wait=false")
