"""The doctor's verdicts and table (pure: no cluster)."""

from __future__ import annotations

import datetime

import pytest

from spe_operator.doctor import CheckResult, Status, exit_code, render_table, verdict
from spe_operator.doctor.netprobe import deny_ingress_policy, judge, probe_pod
from spe_operator.doctor.run import event_for, read_settings_file

pytestmark = pytest.mark.install


@pytest.mark.parametrize("control, forbidden, status, words", [
    (["open", "open", "open"], ["refused", "refused", "refused", "refused"], Status.OK, "enforced"),
    (["open"], ["open", "timeout", "timeout"], Status.OK, "enforced"),   # the rule arrived after one try
    (["open"], ["timeout", "open"], Status.UNSAFE, "forbids succeeded"),
    (["open"], ["open", "open", "open", "open"], Status.UNSAFE, "does not enforce NetworkPolicy"),
    (["timeout", "timeout", "timeout"], [], Status.UNSAFE, "could not connect"),
    (["open"], [], Status.FAIL, "printed nothing"),
])
def test_judge(control, forbidden, status, words):
    result = judge(control, forbidden)
    assert result.status is status
    assert words in result.detail
    assert result.ok == (status is Status.OK)
    if not result.ok:
        assert result.fix


def test_exit_codes_and_verdict():
    ok = CheckResult("storage-class", Status.OK, "fine")
    skipped = CheckResult("gpu-labels", Status.SKIPPED, "no GPUs")
    failed = CheckResult("identity-provider", Status.FAIL, "no answer", "start it")
    unsafe = CheckResult("network-policy", Status.UNSAFE, "open", "install a CNI")
    assert exit_code([ok, skipped]) == 0 and verdict([ok, skipped]).startswith("SAFE")
    assert exit_code([ok, failed]) == 1 and "identity-provider" in verdict([ok, failed])
    assert exit_code([failed, unsafe]) == 2 and verdict([failed, unsafe]).startswith("UNSAFE")


def test_table_names_every_check_its_result_and_fix():
    results = [CheckResult("network-policy", Status.UNSAFE, "a forbidden connection succeeded", "install a CNI"),
               CheckResult("storage-class", Status.OK, "hospital-encrypted marked encrypted")]
    table = render_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert any(ln.startswith("network-policy") and "UNSAFE" in ln for ln in lines)
    assert "fix: install a CNI" in table
    assert "fix:" not in "\n".join(ln for ln in lines if ln.startswith("storage-class"))
    assert lines[-1].startswith("!!!") and lines[-2].startswith("UNSAFE")


def test_probe_pods_pass_restricted_pod_security():
    pod = probe_pod("ns", "server", "img@sha256:x", ["print()"], role="server", node="spe-node-1", ready_port=8080)
    spec = pod["spec"]
    sc = spec["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] and sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["nodeName"] == "spe-node-1" and spec["automountServiceAccountToken"] is False
    policy = deny_ingress_policy("ns")
    assert policy["spec"] == {"podSelector": {"matchLabels": {"spe.ehds.io/doctor": "server"}},
                              "policyTypes": ["Ingress"]}


def test_startup_event_reads_as_a_warning_with_the_fix():
    now = datetime.datetime(2026, 12, 2, tzinfo=datetime.timezone.utc)
    event = event_for(CheckResult("storage-class", Status.FAIL, "StorageClass x does not exist", "create it"),
                      "spe-system", now)
    assert event["type"] == "Warning" and event["reason"] == "PreflightFailed"
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Namespace", "name": "spe-system"}
    assert event["metadata"]["namespace"] == "default"   # a cluster-scoped object's Events live there
    assert event["message"] == "storage-class: FAIL: StorageClass x does not exist; fix: create it"


def test_settings_file_format(tmp_path):
    path = tmp_path / "s.env"
    path.write_text("# comment\n\nSPE_A=1\nSPE_B = two words\n")
    assert read_settings_file(path) == {"SPE_A": "1", "SPE_B": "two words"}
    path.write_text("SPE_A\n")
    with pytest.raises(ValueError, match="s.env:1"):
        read_settings_file(path)
