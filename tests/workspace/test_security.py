"""Security hardening of workspaces: derived names that never collide, no DNS in a
workspace (the addresses it needs are injected), and no server before its namespace is isolated."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest

from spe_api import ConditionType, Reason
from spe_operator.permits.network import build_network_policies
from spe_operator.permits.quota import QUOTA_NAME
from spe_operator.workspaces import checks, names, statefulset

from .helpers import condition, wait_for, ws_path
from .test_builders import NOW, SETTINGS, permit_model, pod_spec, tool_model, ws_model

pytestmark = pytest.mark.workspace


# --- item 4: derived names ----------------------------------------------------------------------

def test_dataset_volume_names_never_collide_across_permits():
    # "ds-<namespace>-<dataset>" made (spe-a-b, c) and (spe-a, b-c) the same PersistentVolume.
    parts = ["a", "b", "a-b", "b-c", "c", "r1", "a-r1"]
    seen: dict[str, tuple[str, str, int]] = {}
    for permit, dataset, revision in itertools.product(parts, parts, (1, 11)):
        name = names.dataset_volume_name(f"spe-{permit}", dataset, revision)
        assert seen.setdefault(name, (permit, dataset, revision)) == (permit, dataset, revision), f"{name} is two volumes"


def test_a_dataset_claim_never_takes_a_workspace_claim_name():
    # A workspace "ds-foo" had claims "ds-foo-home"; a dataset "foo-home" had claim "ds-foo-home".
    workspace_children = {f(ws) for ws in ("ds-foo", "ds-a", "x") for f in
                          (names.home_claim_name, names.outputs_claim_name, names.hub_secret_name)}
    for dataset in ("foo-home", "foo-outputs", "a-hub", "home"):
        assert names.dataset_claim_name(dataset, 1) not in workspace_children


def test_a_claim_names_its_dataset_and_revision_unambiguously():
    for dataset, revision in (("a", 1), ("a-r1", 2), ("lung-ct", 12)):
        claim = names.dataset_claim_name(dataset, revision)
        assert names.revision_of_dataset_claim(dataset, claim) == revision
    assert names.revision_of_dataset_claim("a", names.dataset_claim_name("a-r1", 2)) is None
    assert names.revision_of_dataset_claim("a", "a-home") is None


# --- item 6: no DNS; the hub's and the gateway's addresses injected -----------------------------

def _addresses():
    return (statefulset.ServiceAddress("10.96.0.10", statefulset.service_hostnames("spe-hub", "spe-system")),
            statefulset.ServiceAddress("10.96.0.11", statefulset.service_hostnames("spe-egress", "spe-system")))


def test_a_workspace_has_no_dns_resolver():
    spec = pod_spec()
    assert spec["dnsPolicy"] == "None", "ClusterFirst gives the pod the cluster resolver: a tunnel out"
    assert spec["dnsConfig"]["nameservers"] == ["127.0.0.1"], "only the pod's own loopback, where nothing answers"
    assert spec["dnsConfig"]["searches"] == []


def test_the_components_addresses_are_injected():
    spec = statefulset.build_statefulset(ws_model(), tool_model(), (), SETTINGS, replicas=1,
                                         addresses=_addresses())["spec"]["template"]["spec"]
    aliases = {a["ip"]: a["hostnames"] for a in spec["hostAliases"]}
    assert "spe-hub.spe-system.svc" in aliases["10.96.0.10"]
    assert "spe-egress.spe-system.svc" in aliases["10.96.0.11"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["SPE_EGRESS_URL"] == "http://spe-egress.spe-system.svc:8080"
    assert env["SPE_HUB_API_URL"] == "http://spe-hub.spe-system.svc:8081/hub/api"


def test_spe_export_finds_its_workspace_and_the_gateway_in_the_environment():
    """What spe-export reads inside the server: injected by the operator, not by the hub or a test
    (the token itself comes from the hub's Secret, mounted where start-notebook.sh reads it)."""
    ws = ws_model()
    container = statefulset.build_statefulset(ws, tool_model(), (), SETTINGS, replicas=1)[
        "spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert (env["SPE_WORKSPACE"], env["SPE_NAMESPACE"]) == (ws.name, ws.namespace)
    assert env["SPE_EGRESS_URL"].startswith("http://spe-egress.")
    assert env["SPE_HUB_CREDENTIALS_DIR"] == "/run/secrets/spe-hub"
    assert {"mountPath": "/run/secrets/spe-hub", "name": "hub-credentials", "readOnly": True} in container["volumeMounts"]
    assert not [k for k in env if k.startswith("JUPYTERHUB_")], "the hub's credentials come from its Secret"


# --- item 7: isolation before any server -----------------------------------------------------------

def _isolation(found: set[str]) -> checks.Isolation:
    wanted = {f"NetworkPolicy/{p['metadata']['name']}" for p in build_network_policies(permit_model(), SETTINGS)}
    return checks.Isolation(frozenset(wanted | {f"ResourceQuota/{QUOTA_NAME}"}), frozenset(found))


def test_no_server_starts_without_the_permits_network_policies_and_quota():
    ws = ws_model(running=True)
    ok = dict(permit=permit_model(not_after=NOW + timedelta(days=1)), tool=tool_model())
    everything = _isolation(set()).wanted
    complete = checks.evaluate(ws, expected_namespace="spe-p1", available_tools=["jupyterlab"], datasets=_verdict(),
                               storage=_storage(ws), others=[], now=NOW, isolation=_isolation(set(everything)), **ok)
    assert complete.ok, complete.first_failure
    assert complete.isolation.reason == Reason.ISOLATED
    for missing in ("NetworkPolicy/spe-default-deny", f"ResourceQuota/{QUOTA_NAME}"):
        g = checks.evaluate(ws, expected_namespace="spe-p1", available_tools=["jupyterlab"], datasets=_verdict(),
                            storage=_storage(ws), others=[], now=NOW,
                            isolation=_isolation(set(everything) - {missing}), **ok)
        assert not g.ok
        assert (g.first_failure.type, g.first_failure.reason) == (ConditionType.NAMESPACE_ISOLATED, Reason.NOT_ISOLATED)
        assert missing in g.first_failure.message


def _verdict():
    from spe_operator.workspaces import datasets
    return datasets.evaluate_datasets([], {}, {})


def _storage(ws):
    from spe_operator.workspaces import volumes
    return volumes.build_volume_claims(ws, SETTINGS)[1]


def test_a_workspace_in_a_namespace_its_permit_does_not_own_never_starts(kube, ws_env):
    """Someone made spe-<permit> before the permit: the permit reconciler refuses to adopt it, so
    it has none of the permit's policies -- and the workspace reconciler never runs a server there."""
    env = ws_env
    kube.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": env.namespace}})
    wait_for("the namespace's default service account",
             lambda: kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/serviceaccounts/default"), timeout=30)
    from . import factories as f
    env._permit_body = f.permit(env.permit, datasets=[env.dataset])
    kube.create(env._permit_body)
    kube.create(env.workspace(running=True))

    def blocked():
        ws = kube.get_or_none(ws_path(env.namespace, "ws"))
        cond = condition(ws, "NamespaceIsolated")
        return ws if cond and cond["status"] == "False" else None
    ws = wait_for("the workspace blocked for want of isolation", blocked, timeout=60)
    assert ws["status"]["phase"] == "Blocked"
    assert "spe-default-deny" in condition(ws, "NamespaceIsolated")["message"]
    deadline = time.monotonic() + 5  # and it stays so: no server, ever
    while time.monotonic() < deadline:
        sts = kube.get_or_none(f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets/ws")
        assert not sts or sts["spec"]["replicas"] == 0, "a server was started in a namespace without isolation"
        assert kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0") is None
        time.sleep(0.5)


def test_a_running_workspace_pod_has_no_dns_on_the_api_server(kube, ws_env):
    """The API server accepts the pod without a resolver (dnsPolicy None needs a nameserver)."""
    env = ws_env
    env.create_permit()
    kube.create(env.workspace(running=True))
    pod = wait_for("the server pod", lambda: kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0"),
                   timeout=90)
    assert pod["spec"]["dnsPolicy"] == "None"
    assert pod["spec"]["dnsConfig"]["nameservers"] == ["127.0.0.1"]
    ws = wait_for("isolation checked", lambda: (w := kube.get_or_none(ws_path(env.namespace, "ws"))) and
                  (condition(w, "NamespaceIsolated") or {}).get("status") == "True" and w, timeout=60)
    assert condition(ws, "NamespaceIsolated")["reason"] == "Isolated"


# --- item 10: a start the audit trail cannot record does not happen -------------------------------

def test_a_start_the_audit_trail_cannot_record_does_not_happen(kube, ws_env, exclusive_operator_factory, tmp_path):
    env = ws_env
    with exclusive_operator_factory(audit_log_path=str(tmp_path / "good" / "operator.jsonl")):
        env.create_permit()  # issued (and recorded) while the trail works, status and all
        wait_for("the permit Active with its namespace in place", lambda: (
            p := kube.get_or_none(f"/apis/spe.ehds.io/v1alpha1/datapermits/{env.permit}")) and
            (p.get("status") or {}).get("phase") == "Active" and
            (condition(p, "NamespaceReady") or {}).get("status") == "True", timeout=30)
    broken = tmp_path / "broken.jsonl"
    broken.mkdir()  # the trail's file cannot be opened: every write fails, as on a broken volume
    with exclusive_operator_factory(audit_log_path=str(broken)):
        kube.create(env.workspace(running=True))
        # kwok makes a pod Ready within moments; give it far longer than that
        deadline = time.monotonic() + 25
        seen_pod = False
        while time.monotonic() < deadline:
            ws = kube.get_or_none(ws_path(env.namespace, "ws"))
            assert ((ws or {}).get("status") or {}).get("phase") != "Running", \
                "the workspace runs although its start is in no audit record"
            seen_pod = seen_pod or kube.get_or_none(f"/api/v1/namespaces/{env.namespace}/pods/ws-0") is not None
            time.sleep(0.5)
        sts = kube.get_or_none(f"/apis/apps/v1/namespaces/{env.namespace}/statefulsets/ws")
        assert seen_pod and sts is not None, "the server was never even tried (nothing to refuse)"
