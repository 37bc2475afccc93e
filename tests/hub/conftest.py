"""Fixtures of the hub tests: the workspace tests' cluster objects, the hub's own identity."""

from __future__ import annotations

import pytest

from tests.fixtures.operator import service_account_kubeconfig
# The workspace area's fixtures (an approved Tool, a Ready Dataset, a fresh Active permit per test).
from tests.workspace.conftest import dataset_name, kube, suffix, tool_name, ws_env  # noqa: F401

HUB_SA = ("spe-system", "spe-hub")


@pytest.fixture(scope="session")
def hub_kubeconfig(cluster, operator_kubeconfig, tmp_path_factory) -> str:
    """A kubeconfig with a token of the hub's ServiceAccount (manifests/base RBAC, applied by the
    operator fixture; the per-permit RoleBinding is the operator's): the tests prove it sufficient."""
    path = tmp_path_factory.mktemp("hub-identity") / "spe-hub.kubeconfig"
    return str(service_account_kubeconfig(cluster, *HUB_SA, path))
