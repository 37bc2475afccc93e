"""Fixtures of the Dataset tests on the real node: the node's fixtures (tests/node)."""

from tests.node.conftest import node_env, node_namespace, real_node  # noqa: F401 - fixtures
