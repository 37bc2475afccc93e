"""The operator waits for its CRDs to be served before Kopf reads discovery (once)."""

from __future__ import annotations

import pytest

from spe_api import KINDS
from spe_kube import ApiError
from spe_operator.runtime import wait_for_crds

pytestmark = pytest.mark.api


class FakeDiscovery:
    """Answers the group-version discovery request with what is 'installed' so far."""

    def __init__(self, served_after: int):
        self.calls = 0
        self.served_after = served_after

    async def request(self, method: str, path: str, **_):
        assert (method, path) == ("GET", "/apis/spe.ehds.io/v1alpha1")
        self.calls += 1
        if self.calls <= self.served_after:
            raise ApiError(404, {"reason": "NotFound", "message": "the server could not find the requested resource"})
        return {"resources": [{"name": k.PLURAL} for k in KINDS] + [{"name": "workspaces/status"}]}


async def test_returns_once_every_kind_is_served():
    fake = FakeDiscovery(served_after=3)
    await wait_for_crds(fake, timeout=5, interval=0.01)
    assert fake.calls == 4


async def test_names_the_missing_kinds_and_the_fix_at_the_deadline():
    fake = FakeDiscovery(served_after=10**6)
    with pytest.raises(RuntimeError, match=r"datapermits, datasets, outputreviews, tools, workspaces missing.*apply crds/"):
        await wait_for_crds(fake, timeout=0.05, interval=0.01)
