"""`spe-operator doctor` against the test cluster and its real node: SAFE with kube-router
enforcing NetworkPolicy; UNSAFE, loudly, with kube-router stopped (the node's FORWARD policy
keeps it fail-closed: even the unrestricted control connection fails) and with kube-router
stopped on a node that forwards everything (a CNI that ignores NetworkPolicy: the forbidden
connection succeeds)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spe_dev.procs import ProcessTable
from spe_dev.settings import REAL_NODE_NAME
from tests.fixtures.waiting import wait_for
from tests.node.conftest import NOTEBOOK, real_node  # noqa: F401 - real_node is a fixture

pytestmark = [pytest.mark.install, pytest.mark.timeout(900)]   # Keycloak's start on busy cores

GPU_MODELS = "NVIDIA-A30,NVIDIA-L40S"   # the kwok GPU nodes' labels


def _settings(path: Path, operator, issuer: str | None) -> Path:
    """The installer's settings for the test cluster: its encrypted class, its IdP, its GPU
    models, the session operator's webhook configuration."""
    lines = ["# the test cluster", "SPE_FEDERATION_ROLE=node",
             f"SPE_DEFAULT_STORAGE_CLASS={operator.default_storage_class}",
             f"SPE_ENCRYPTED_STORAGE_CLASSES={','.join(operator.encrypted_storage_classes)}",
             f"SPE_GPU_MODELS={GPU_MODELS}",
             f"SPE_WEBHOOK_CONFIGURATION_NAME={operator.webhook_configuration_name}"]
    if issuer:
        lines.append(f"SPE_IDP_ISSUER_URL={issuer}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def settings_file(tmp_path, operator, keycloak, storage_provisioner) -> Path:
    return _settings(tmp_path / "settings.env", operator, keycloak.issuer)


@pytest.fixture
def settings_without_idp(tmp_path, operator, storage_provisioner) -> Path:
    """For the UNSAFE cases: the verdict (exit 2) does not depend on the other checks."""
    return _settings(tmp_path / "settings.env", operator, None)


def doctor(cluster, real_node, settings_file: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "spe_operator.cli", "doctor", "--settings", str(settings_file),
                           "--kubeconfig", cluster.kubeconfig, "--probe-image", real_node.image(NOTEBOOK),
                           "--probe-node", REAL_NODE_NAME, *extra],
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout, proc.stderr)
    return proc


def row(table: str, check: str) -> str:
    (line,) = [ln for ln in table.splitlines() if ln.startswith(check + " ")]
    return line


@pytest.fixture
def kube_router_stopped(cluster, real_node) -> Iterator[None]:
    s = cluster.settings
    rec = ProcessTable(s.run_dir, s.log_dir).running("kube-router")
    assert rec, "kube-router is not running"
    os.kill(rec.pid, signal.SIGKILL)
    wait_for("kube-router gone", lambda: not rec.alive(), timeout=10)
    try:
        yield
    finally:
        real_node.in_node_netns("iptables", "-P", "FORWARD", "DROP")
        up = subprocess.run([sys.executable, "-m", "spe_dev", "up"], capture_output=True, text=True, timeout=300,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("SPE_DEV_")},
                                 "SPE_DEV_HOME": str(s.home),
                                 "SPE_DEV_PORT_OFFSET": str(s.ports["apiserver"] - 36443)})
        assert up.returncode == 0, up.stdout + up.stderr
        assert ProcessTable(s.run_dir, s.log_dir).running("kube-router")


def test_doctor_calls_a_cluster_without_kube_router_unsafe(cluster, real_node, settings_without_idp,
                                                            kube_router_stopped):
    proc = doctor(cluster, real_node, settings_without_idp)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = row(proc.stdout, "network-policy")
    assert "UNSAFE" in line and "could not connect" in proc.stdout
    assert "UNSAFE: this cluster must not hold health data (network-policy)" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("!!!")


def test_doctor_calls_a_cluster_that_ignores_network_policy_unsafe(cluster, real_node, settings_without_idp,
                                                                  kube_router_stopped):
    # A node that forwards whatever no rule drops: what a CNI without NetworkPolicy support does.
    accept = real_node.in_node_netns("iptables", "-P", "FORWARD", "ACCEPT")
    assert accept.returncode == 0, accept.stderr
    proc = doctor(cluster, real_node, settings_without_idp)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "UNSAFE" in row(proc.stdout, "network-policy")
    assert "a connection that a NetworkPolicy forbids succeeded" in proc.stdout


def test_doctor_calls_an_enforcing_cluster_safe(cluster, real_node, settings_file):
    """kube-router enforcing: the network check passes; the storage class, Keycloak, the GPU
    labels, the webhook and the audit sink (the session operator's start-up report) too."""
    proc = doctor(cluster, real_node, settings_file)
    table = proc.stdout
    assert proc.returncode == 0, table + proc.stderr
    assert " OK " in row(table, "network-policy") and "enforced" in row(table, "network-policy")
    for check in ("installation", "storage-class", "identity-provider", "gpu-labels", "admission-webhook",
                  "audit-sink"):
        assert " OK " in row(table, check), table
    assert table.rstrip().splitlines()[-1].startswith("SAFE")
    # The probe cleans up after itself.
    probes = cluster.kubectl("get", "namespaces", "-l", "spe.ehds.io/doctor=probe", "-o",
                             "jsonpath={.items[*].status.phase}").stdout.split()
    assert set(probes) <= {"Terminating"}, probes
