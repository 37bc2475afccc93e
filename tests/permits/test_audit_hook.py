"""The optional audit hook of the permit reconciler."""

from __future__ import annotations

import json

import pytest

from spe_operator.audit import ACTOR, AuditHook

pytestmark = pytest.mark.permits


async def test_disabled_without_a_path():
    hook = AuditHook.from_settings(None)
    assert not hook.enabled
    await hook.record("permit.issued", target="DataPermit/p1", permit="p1")  # a no-op


async def test_records_permit_acts_in_the_hash_chained_log(tmp_path):
    pytest.importorskip("spe_audit")
    path = tmp_path / "audit" / "operator.jsonl"
    hook = AuditHook.from_settings(str(path))
    assert hook.enabled
    await hook.record("permit.issued", target="DataPermit/p1", permit="p1", details={"permitId": "X-1"})
    await hook.record("permit.expired", target="DataPermit/p1", permit="p1")
    hook.close()
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    acts = [r for r in records if r.get("action", "").startswith("permit.")]
    assert [r["action"] for r in acts] == ["permit.issued", "permit.expired"]
    assert all(r["actor"] == ACTOR and r["permit"] == "p1" for r in acts)
    from spe_audit import verify  # noqa: PLC0415
    result = verify(path)
    assert result.problem is None and result.records >= 2, result


async def test_a_broken_log_never_stops_reconciliation(caplog):
    class Broken:
        def record(self, *a, **k):
            raise OSError("disk full")

    await AuditHook(Broken()).record("permit.revoked", target="DataPermit/p1", permit="p1")
    assert "disk full" in caplog.text
