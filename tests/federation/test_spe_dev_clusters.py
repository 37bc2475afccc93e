"""`spe-dev --cluster NAME`: independent control planes side by side (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spe_dev.cli import _take_cluster
from spe_dev.settings import DEFAULT_PORTS, Settings

pytestmark = pytest.mark.federation


def settings(tmp_path: Path, cluster: str | None, **env) -> Settings:
    base = {"SPE_DEV_HOME": str(tmp_path / "spe-dev"), "SPE_CONTROLPLANE_BIN": str(tmp_path / "bin"),
            "SPE_IMAGES_CACHE": str(tmp_path / "images"), **env}
    return Settings.from_env(base, cluster=cluster)


def test_named_clusters_have_their_own_home_ports_and_kubeconfig(tmp_path):
    default, central, node = (settings(tmp_path, c) for c in (None, "central", "node"))
    assert default.home == tmp_path / "spe-dev"
    assert central.home == tmp_path / "spe-dev-central" and node.home == tmp_path / "spe-dev-node"
    assert len({default.admin_kubeconfig, central.admin_kubeconfig, node.admin_kubeconfig}) == 3
    ports = [set(s.ports.values()) for s in (default, central, node)]
    assert not (ports[0] & ports[1]) and not (ports[0] & ports[2]) and not (ports[1] & ports[2])
    # ... and away from the test cluster's (offset 100) and the other fixed homes' (200, 300).
    for offset in (100, 200, 300):
        fixed = {p + offset for p in DEFAULT_PORTS.values()}
        assert not fixed & ports[1] and not fixed & ports[2]
    assert len({default.home_tag, central.home_tag, node.home_tag}) == 3


def test_named_clusters_run_kwok_only_unless_asked(tmp_path):
    assert settings(tmp_path, None).real_node
    assert not settings(tmp_path, "central").real_node
    assert settings(tmp_path, "node", SPE_DEV_REAL_NODE="1").real_node


def test_the_environment_names_the_cluster_too(tmp_path):
    assert settings(tmp_path, None, SPE_DEV_CLUSTER="node").home == tmp_path / "spe-dev-node"


@pytest.mark.parametrize("bad", ["Central", "-x", "a_b", "x" * 40, "node."])
def test_bad_cluster_names_are_refused_with_the_rule(tmp_path, bad):
    with pytest.raises(RuntimeError, match="lower-case letters"):
        settings(tmp_path, bad)


def test_cluster_option_before_the_command():
    assert _take_cluster(["--cluster", "node", "kubectl", "get", "nodes"]) == ("node", ["kubectl", "get", "nodes"])
    assert _take_cluster(["--cluster=central", "up"]) == ("central", ["up"])
    assert _take_cluster(["up", "--cluster", "x"]) == (None, ["up", "--cluster", "x"])
