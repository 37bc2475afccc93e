"""Two clusters and Open Cluster Management between them, for the federation tests.

``federation`` (module): starts two independent spe-dev control planes, ``central`` and
``node`` (``spe-dev --cluster NAME up``: own homes, ports, kubeconfigs; kwok nodes only), joins
``node`` to ``central`` through OCM (``spe-dev federation join``: the hub's registration, work and
placement controllers on central, the klusterlet agent on the node, which alone dials across),
installs the SPE CRDs and the base manifests' RBAC on both, and stops everything at the end.
Inside the suite's network namespace the homes are keyed by the namespace, like the test cluster.

``operators`` (module): the same operator on both, each with the manifests' ServiceAccount:
central with ``federation_role=central``, the node with ``federation_role=node``, a short lease
(LEASE seconds) and sync interval, and its own audit trail with a signing key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spe_dev.cluster import effective_settings
from spe_dev.ocm import Federation, ocm_dir
from spe_dev.procs import processes_mentioning
from spe_dev.settings import Settings, repo_root
from tests.fixtures import netns
from tests.fixtures.cluster import Cluster
from tests.fixtures.operator import (OPERATOR_SA, install_base_rbac, install_crds, running_operator,
                                     service_account_kubeconfig, test_settings)

START_TIMEOUT = 300
LEASE = 20.0         # the node's lease in these tests (production default 15 min); above a busy machine's sync delays
SYNC = 1.0           # federation sync interval in these tests
NODE = "node"
HELD = ("lung-ct",)  # the datasets the node holds (ManagedCluster labels)


@dataclass
class Fed:
    central: Cluster
    node: Cluster
    env: dict[str, str]
    join_seconds: float
    ocm: Path
    figures: dict[str, float] = field(default_factory=dict)

    def spe_dev(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "spe_dev", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)


def _home_base() -> Path:
    root = repo_root()
    if netns.isolated():
        return root / ".cache" / f"spe-dev-fed-net{os.stat('/proc/self/ns/net').st_ino}"
    return root / ".cache" / "spe-dev-fed"


def _cluster(env: dict[str, str], name: str) -> Cluster:
    s = effective_settings(Settings.from_env(env, cluster=name))
    return Cluster(str(s.admin_kubeconfig), s.server, s.home, s.bin_dir, True, s)


def _run(env, *args, timeout):
    return subprocess.run([sys.executable, "-m", "spe_dev", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _prune_stale_homes(keep: list[Path]) -> None:
    """Earlier namespaced runs' homes (small: PKI and logs; etcd is purged) that nothing uses."""
    for home in (repo_root() / ".cache").glob("spe-dev-fed-net*"):
        if home not in keep and not processes_mentioning(str(home)):
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def federation() -> Iterator[Fed]:
    ocm = ocm_dir()
    if not (ocm / "complete").is_file():
        pytest.fail(f"Open Cluster Management is not built in {ocm}: run `bash tests/controlplane/build-ocm.sh` "
                    "(make test does) first", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPE_DEV_")}
    env.update(SPE_DEV_HOME=str(_home_base()), SPE_DEV_READY_TIMEOUT=str(START_TIMEOUT), SPE_DEV_REAL_NODE="0")
    homes = [Settings.from_env(env, cluster=c).home for c in ("central", NODE)]
    _prune_stale_homes(homes)
    try:
        # Both control planes start at once (independent homes and ports).
        procs = [subprocess.Popen([sys.executable, "-m", "spe_dev", "--cluster", c, "up", "--fresh"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for c in ("central", NODE)]
        outs = [p.communicate(timeout=START_TIMEOUT + 60)[0] for p in procs]
        for p, out in zip(procs, outs):
            if p.returncode != 0:
                pytest.fail(f"spe-dev up failed:\n{out}", pytrace=False)
        central, node = _cluster(env, "central"), _cluster(env, NODE)
        for c in (central, node):
            install_crds(c)
            install_base_rbac(c)
        t0 = time.monotonic()
        join = _run(env, "federation", "join", "--hub", "central", "--cluster", NODE, "--tier", "3",
                    *[a for d in HELD for a in ("--dataset", d)], timeout=400)
        if join.returncode != 0:
            pytest.fail(f"spe-dev federation join failed:\n{join.stdout}\n{join.stderr}", pytrace=False)
        yield Fed(central, node, env, time.monotonic() - t0, ocm)
    finally:
        for c in (NODE, "central"):
            _run(env, "--cluster", c, "down", "--purge", timeout=180)
        ours = (str(Settings.from_env(env).bin_dir), str(ocm))
        for home in homes:
            left = [p for p in processes_mentioning(str(home)) if p[1] and p[1][0].startswith(ours)]
            assert not left, f"processes of {home} left running: {left}"


@pytest.fixture(scope="module")
def operators(federation: Fed, tmp_path_factory) -> Iterator[dict[str, object]]:
    from spe_audit.checkpoint import generate_keypair  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("federation-operators")
    key, pub = tmp / "audit.pem", tmp / "audit.pub"
    generate_keypair(key, pub)
    central_kc = service_account_kubeconfig(federation.central, *OPERATOR_SA, tmp / "central.kubeconfig")
    node_kc = service_account_kubeconfig(federation.node, *OPERATOR_SA, tmp / "node.kubeconfig")
    central = test_settings(kubeconfig=str(central_kc), federation_role="central", federation_sync_interval=SYNC,
                            audit_log_path=str(tmp / "central-audit.jsonl"))
    node = test_settings(kubeconfig=str(node_kc), federation_role="node", federation_sync_interval=SYNC,
                         federation_lease=LEASE, audit_checkpoint_every=2,
                         audit_log_path=str(tmp / "node-audit.jsonl"), audit_signing_key=str(key),
                         audit_checkpoint_configmap="spe-audit-checkpoint")
    with running_operator(central), running_operator(node):
        yield {"central": central, "node": node, "audit_public_key": pub, "node_audit_log": tmp / "node-audit.jsonl"}
