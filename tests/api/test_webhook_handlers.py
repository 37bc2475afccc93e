"""The Kopf handlers' glue (fetch, parse, decide, refuse) with an in-memory API."""

from __future__ import annotations

import kopf
import pytest

from spe_operator.admission import handlers
from spe_operator.settings import SpeSettings

from .helpers import edit, example

pytestmark = pytest.mark.api

GATEWAY = {"username": "system:serviceaccount:spe-system:spe-egress", "groups": ["system:serviceaccounts"]}
ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters"]}


class FakeKube:
    """get_or_none/list over a fixed set of objects, keyed by (kind, namespace, name)."""

    def __init__(self, *objects: dict):
        self.objects = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}

    async def get_or_none(self, kind, name, namespace=None):
        return self.objects.get((kind.kind, namespace, name))

    async def list(self, kind, namespace=None, **_):
        return [o for (k, ns, _n), o in self.objects.items() if k == kind.kind and (namespace is None or ns == namespace)]


def memo(*objects: dict) -> kopf.Memo:
    return kopf.Memo(settings=SpeSettings(), kube=FakeKube(*objects))


def world(*skip: str) -> list[dict]:
    return [example(k) for k in ("prostate-mr", "lung-ct", "tool", "permit", "workspace") if k not in skip]


async def test_workspace_example_admitted():
    await handlers.validate_workspace(body=example("workspace"), old=None, memo=memo(*world("workspace")))


async def test_workspace_refused_with_the_rule_message():
    body = edit(example("workspace"), spec__tool="rstudio")
    with pytest.raises(kopf.AdmissionError) as err:
        await handlers.validate_workspace(body=body, old=None, memo=memo(*world("workspace")))
    assert err.value.code == 422
    assert "spec.tool: Tool 'rstudio' does not exist" in str(err.value) and "jupyterlab-monai" in str(err.value)


async def test_workspace_update_excludes_itself():
    body = edit(example("workspace"), spec__resources__cpu="12")
    await handlers.validate_workspace(body=body, old=example("workspace"), memo=memo(*world()))


async def test_output_review_only_from_gateway():
    with pytest.raises(kopf.AdmissionError) as err:
        await handlers.validate_output_review(body=example("review"), userinfo=ADMIN, memo=memo(*world()))
    assert err.value.code == 403 and "only the egress gateway" in str(err.value)
    await handlers.validate_output_review(body=example("review"), userinfo=GATEWAY, memo=memo(*world()))


async def test_output_review_gateway_account_may_be_given_in_full():
    settings = SpeSettings(egress_service_account="system:serviceaccount:spe-system:spe-egress")
    m = kopf.Memo(settings=settings, kube=FakeKube(*world()))
    await handlers.validate_output_review(body=example("review"), userinfo=GATEWAY, memo=m)


async def test_permit_needs_its_datasets():
    with pytest.raises(kopf.AdmissionError) as err:
        await handlers.validate_data_permit(body=example("permit"), old=None, memo=memo(example("prostate-mr")))
    assert "spec.datasets: Dataset 'lung-ct' does not exist" in str(err.value)
    await handlers.validate_data_permit(body=example("permit"), old=None, memo=memo(*world("permit")))


class SlowKube(FakeKube):
    """FakeKube whose every request takes a while, recording how many were in flight at once."""

    def __init__(self, *objects: dict):
        super().__init__(*objects)
        self.in_flight = self.most_in_flight = self.requests = 0

    async def _slow(self, result):
        import asyncio

        self.requests += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.02)
        self.in_flight -= 1
        return result

    async def get_or_none(self, kind, name, namespace=None):
        return await self._slow(await super().get_or_none(kind, name, namespace))

    async def list(self, kind, namespace=None, **kw):
        return await self._slow(await super().list(kind, namespace, **kw))


async def test_workspace_lookups_run_at_once_not_one_after_another():
    kube = SlowKube(*world("workspace"))
    await handlers.validate_workspace(body=example("workspace"), old=None,
                                      memo=kopf.Memo(settings=SpeSettings(), kube=kube))
    assert kube.requests == 3 and kube.most_in_flight == 3


async def test_workspace_in_a_permit_namespace_other_than_the_conventional_one_is_checked_there():
    permit = example("permit")
    namespace = "elsewhere"
    permit = {**permit, "status": {**(permit.get("status") or {}), "namespace": namespace}}
    busy = example("workspace")  # holds the permit's one L40S
    busy["metadata"] = {**busy["metadata"], "name": "hog", "namespace": namespace}
    body = example("workspace")
    body["metadata"] = {**body["metadata"], "namespace": namespace}
    with pytest.raises(kopf.AdmissionError) as err:
        await handlers.validate_workspace(body=body, old=None, memo=memo(*world("workspace", "permit"), permit, busy))
    assert err.value.code == 422 and "held by its other running workspaces 1 (hog)" in str(err.value)


async def test_webhooks_look_up_through_their_own_client_when_there_is_one():
    """The admission client has its own connection pool; the shared one is not used at all."""
    shared = SlowKube()  # empty: a lookup here would find no permit and refuse
    own = SlowKube(*world("workspace"))
    await handlers.validate_workspace(body=example("workspace"), old=None,
                                      memo=kopf.Memo(settings=SpeSettings(), kube=shared, admission_kube=own))
    assert own.requests == 3 and shared.requests == 0


async def test_permit_lookups_run_at_once():
    kube = SlowKube(*world("permit"))
    await handlers.validate_data_permit(body=example("permit"), old=None,
                                        memo=kopf.Memo(settings=SpeSettings(), kube=kube))
    assert kube.requests == 2 and kube.most_in_flight == 2


async def test_permit_update_lists_no_other_permits():
    kube = SlowKube(*world())
    await handlers.validate_data_permit(body=example("permit"), old=example("permit"),
                                        memo=kopf.Memo(settings=SpeSettings(), kube=kube))
    assert kube.requests == 1


class _Controller:
    """What the webhook reads of the workspace reconciler: its watch-fed world, once listed."""

    def __init__(self, *objects: dict, listed: bool = True):
        from spe_operator.workspaces.world import World
        self.world, self.listed = World(), listed
        for obj in objects:
            obj = {**obj, "metadata": {"resourceVersion": "1", "uid": obj["metadata"]["name"], **obj["metadata"]}}
            {"Workspace": self.world.put_workspace, "DataPermit": self.world.put_permit,
             "Tool": self.world.put_tool, "Dataset": self.world.put_dataset}[obj["kind"]](obj)


def _with_world(kube, *objects: dict, listed: bool = True) -> kopf.Memo:
    return kopf.Memo(settings=SpeSettings(), kube=kube, workspace_controller=_Controller(*objects, listed=listed))


async def test_workspace_checks_come_from_the_reconcilers_world_without_a_request():
    """At 5,000 workspaces a LIST per admission was most of the webhook's time: the leader's
    world (the same process) answers, and the ceilings count the Workspaces it holds."""
    kube = SlowKube()  # empty: any lookup would find nothing and refuse
    await handlers.validate_workspace(body=example("workspace"), old=None, memo=_with_world(kube, *world("workspace")))
    assert kube.requests == 0
    hog = example("workspace")
    hog["metadata"] = {**hog["metadata"], "name": "hog"}
    with pytest.raises(kopf.AdmissionError) as err:
        await handlers.validate_workspace(body=example("workspace"), old=None, memo=_with_world(kube, *world(), hog))
    assert err.value.code == 422 and "(hog)" in str(err.value)
    assert kube.requests == 0


async def test_a_permit_or_tool_the_world_has_not_seen_yet_is_read_from_the_api_server():
    """The world lags by a watch event: never refuse for that."""
    kube = SlowKube(example("permit"), example("tool"))
    await handlers.validate_workspace(body=example("workspace"), old=None,
                                      memo=_with_world(kube, example("prostate-mr"), example("lung-ct")))
    assert kube.requests == 2   # the permit and the tool; no LIST


async def test_before_the_world_has_listed_the_api_server_answers():
    kube = SlowKube(*world("workspace"))
    await handlers.validate_workspace(body=example("workspace"), old=None,
                                      memo=_with_world(kube, listed=False))
    assert kube.requests == 3


async def test_a_permit_is_checked_against_the_reconcilers_world_without_a_request():
    """1,000 permits created together: a LIST of every permit per create was quadratic."""
    kube = SlowKube()
    await handlers.validate_data_permit(body=example("permit"), old=None,
                                        memo=_with_world(kube, example("prostate-mr"), example("lung-ct")))
    assert kube.requests == 0
    # another permit of the same world is among the others the rules see
    twin = edit(example("permit"), metadata__name="other")
    with pytest.raises(kopf.AdmissionError):
        await handlers.validate_data_permit(body=example("permit"), old=None,
                                            memo=_with_world(kube, example("prostate-mr"), example("lung-ct"), twin))
    assert kube.requests == 0


async def test_a_permit_naming_a_dataset_the_world_has_not_seen_is_checked_by_the_api_server():
    kube = SlowKube(example("prostate-mr"), example("lung-ct"))
    await handlers.validate_data_permit(body=example("permit"), old=None,
                                        memo=_with_world(kube, example("prostate-mr")))
    assert kube.requests == 2
