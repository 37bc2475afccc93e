"""The hub and its proxy as pods on spe-dev's real node, from the image built here (images/hub),
with manifests/base/hub.yaml as written (tests/hub/on_node.py says what a test cluster changes).
/hub/health answers through `kubectl port-forward`, on the hub and through the proxy."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.node.conftest import real_node  # noqa: F401 - real_node is a fixture

from .on_node import SystemPods, port_forward

pytestmark = [pytest.mark.hub, pytest.mark.node, pytest.mark.timeout(900)]  # the first test waits for the cluster


@pytest.fixture
def hub_on_node(cluster, real_node, operator_kubeconfig):  # noqa: F811
    """manifests/base/hub.yaml applied in spe-system, pods pinned to the real node."""
    system = SystemPods(cluster, real_node)
    system.hub()
    yield system
    system.cleanup()


def test_hub_and_proxy_run_on_the_real_node_and_answer_health(cluster, hub_on_node):
    started = time.monotonic()
    pods = hub_on_node.wait_ready("spe-hub", "spe-proxy")
    hub, proxy = pods["spe-hub"], pods["spe-proxy"]
    print(f"hub and proxy Ready on the real node in {time.monotonic() - started:.1f}s")
    assert hub["spec"]["nodeName"] == proxy["spec"]["nodeName"] == "spe-node-1"
    for pod in (hub, proxy):
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "spe"
    assert hub["metadata"]["labels"]["app.kubernetes.io/component"] == "hub"
    assert proxy["metadata"]["labels"]["app.kubernetes.io/component"] == "proxy"
    assert hub["spec"]["serviceAccountName"] == "spe-hub"

    for target, port in ((f"pod/{hub['metadata']['name']}", 8081), (f"pod/{proxy['metadata']['name']}", 8000)):
        proc, local = port_forward(cluster, target, port)
        try:
            def health():
                try:
                    r = httpx.get(f"http://127.0.0.1:{local}/hub/health", timeout=5, trust_env=False)
                    return r if r.status_code == 200 else None
                except httpx.HTTPError:
                    return None
            # through the proxy, /hub/ is routed once the hub has registered itself there
            r = wait_for(f"/hub/health via {target}", health, timeout=60, interval=1)
            assert r.status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)
