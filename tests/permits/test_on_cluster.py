"""The DataPermit reconciler on the real control plane: children, phases to the second,
suspension and revocation, drift repair, deletion. Waits poll with deadlines, never sleep."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from spe_operator.permits.network import policy_table

from .conftest import API, make_workspace, wait_for
from .test_builders import GOLDEN_POLICIES

pytestmark = pytest.mark.permits

# The permit reconciler says PermitExpired; the Workspace reconciler, which writes the same
# condition from its own view of the permit, says Expired. Either names the cause.
EXPIRED_REASONS = ("PermitExpired", "Expired")
RECONCILED = 20.0  # generous deadline for a first reconcile on a busy 2-core machine
DRIFT_REPAIR = 5.0  # "restored within a few seconds"


def _cond(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def _phase(kube, name: str) -> str | None:
    return ((kube.permit(name) or {}).get("status") or {}).get("phase")


def _ready_permit(kube, permits, **kwargs) -> tuple[str, str]:
    body = permits(**kwargs)
    name = body["metadata"]["name"]
    wait_for(f"permit {name} Ready",
             lambda: (p := kube.permit(name)) and (_cond(p, "Ready") or {}).get("status") == "True",
             RECONCILED)
    return name, f"spe-{name}"


def _transition(obj: dict, type_: str) -> datetime:
    return datetime.fromisoformat(_cond(obj, type_)["lastTransitionTime"].replace("Z", "+00:00"))


def _events(kube, namespace: str, name: str) -> list[dict]:
    selector = quote(f"involvedObject.name={name}")
    return kube.items(f"/api/v1/namespaces/{namespace}/events?fieldSelector={selector}")


# --- children ---------------------------------------------------------------------------------

def test_children_have_the_right_content(kube, permits):
    name, ns = _ready_permit(kube, permits)
    permit = kube.permit(name)
    uid = permit["metadata"]["uid"]
    status = permit["status"]
    assert status["phase"] == "Active" and status["namespace"] == ns and status["members"] == 2
    assert status["observedGeneration"] == permit["metadata"]["generation"]
    assert not permit["metadata"].get("finalizers"), "no finalizer: nothing outside Kubernetes to clean"
    for type_ in ("Ready", "Active", "WithinValidity", "NamespaceReady"):
        cond = _cond(permit, type_)
        assert cond["status"] == "True" and cond["observedGeneration"] == permit["metadata"]["generation"], cond

    namespace = kube.get(f"/api/v1/namespaces/{ns}")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["spe.ehds.io/permit"] == name
    assert [o["uid"] for o in namespace["metadata"]["ownerReferences"]] == [uid]

    (quota,) = kube.items(f"/api/v1/namespaces/{ns}/resourcequotas")
    assert quota["spec"]["hard"] == {
        "requests.cpu": "8", "limits.cpu": "8", "requests.memory": "32Gi", "limits.memory": "32Gi",
        "requests.nvidia.com/gpu": "3", "pods": "5",
        "spe-encrypted.storageclass.storage.k8s.io/requests.storage": "100Gi"}
    (limits,) = kube.items(f"/api/v1/namespaces/{ns}/limitranges")
    container = next(x for x in limits["spec"]["limits"] if x["type"] == "Container")
    assert container["default"] == {"cpu": "1", "memory": "2Gi"}

    policies = kube.items(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")
    expected = {(r[0],) + r[1:] for r in GOLDEN_POLICIES}
    assert policy_table(policies) == expected, "the API server holds exactly the golden table"

    bindings = kube.items(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")
    assert {(b["metadata"]["name"], b["roleRef"]["name"], b["subjects"][0]["name"]) for b in bindings} == {
        ("spe-permit-hub", "spe-permit-hub", "spe-hub"), ("spe-permit-egress", "spe-permit-egress", "spe-egress")}
    for child in [quota, limits, *policies, *bindings]:
        assert [o["uid"] for o in child["metadata"]["ownerReferences"]] == [uid]
    issued = [e for e in _events(kube, "default", name) if e["reason"] == "Issued"]
    assert issued, "an Issued event on the permit"


def test_a_workspace_pod_without_limits_gets_the_defaults_and_a_root_pod_is_refused(kube, permits):
    _name, ns = _ready_permit(kube, permits)
    base = {"apiVersion": "v1", "kind": "Pod", "spec": {"automountServiceAccountToken": False, "containers": [{
        "name": "c", "image": "example.invalid/x@sha256:" + "0" * 64,
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1000,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}}
    # The ServiceAccount controller makes `default` a moment after the namespace.
    wait_for("default SA", lambda: kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), RECONCILED)
    ok = kube.api.call("POST", f"/api/v1/namespaces/{ns}/pods?dryRun=All", {**base, "metadata": {"name": "ok"}})
    assert ok["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    root = {**base, "metadata": {"name": "root"}}
    root["spec"] = {**base["spec"], "containers": [{**base["spec"]["containers"][0], "securityContext": {}}]}
    status, text = kube.api.raw("POST", f"/api/v1/namespaces/{ns}/pods?dryRun=All", root)
    assert status == 403 and "restricted" in text, text


# --- time -------------------------------------------------------------------------------------

def test_phases_follow_the_validity_window_to_the_second(kube, permits, world):
    start = datetime.now(timezone.utc)
    not_before, not_after = start + timedelta(seconds=3), start + timedelta(seconds=6)
    body = permits("timed", not_before=not_before, not_after=not_after)
    name, ns = body["metadata"]["name"], f"spe-{body['metadata']['name']}"
    wait_for("Pending", lambda: _phase(kube, name) == "Pending", 3)

    wait_for("Active", lambda: _phase(kube, name) == "Active", 6, interval=0.02)
    became_active = datetime.now(timezone.utc)
    active_at = _transition(kube.permit(name), "Active")
    make_workspace(kube, world, name, "ws-run", running=True)
    make_workspace(kube, world, name, "ws-idle", running=False)

    wait_for("Expired", lambda: _phase(kube, name) == "Expired", 6, interval=0.02)
    became_expired = datetime.now(timezone.utc)
    expired_at = _transition(kube.permit(name), "Active")
    # The operator moved the phase within a second of each boundary, never before it (its own
    # transition time) ...
    assert not_before <= active_at <= not_before + timedelta(seconds=1), active_at - not_before
    assert not_after <= expired_at <= not_after + timedelta(seconds=1), expired_at - not_after
    # ... and a client polling the API server saw it promptly (slack for a loaded machine).
    assert became_active - not_before <= timedelta(seconds=2), became_active - not_before
    assert became_expired - not_after <= timedelta(seconds=2), became_expired - not_after
    print(f"\nActive {active_at - not_before} after notBefore (seen after {became_active - not_before}); "
          f"Expired {expired_at - not_after} after notAfter (seen after {became_expired - not_after})")

    ws = kube.workspace(ns, "ws-run")
    assert ws["spec"]["running"] is False, "stopped in the same reconcile that expired the permit"
    for wsname in ("ws-run", "ws-idle"):
        cond = _cond(kube.workspace(ns, wsname), "PermitActive")
        assert cond and cond["status"] == "False" and cond["reason"] in EXPIRED_REASONS, cond
    wait_for("PermitExpired event on the workspace",
             lambda: [e for e in _events(kube, ns, "ws-run") if e["reason"] in EXPIRED_REASONS], 5)
    wait_for("Expired event on the permit",
             lambda: [e for e in _events(kube, "default", name) if e["reason"] == "Expired"], 5)
    permit = kube.permit(name)
    assert _cond(permit, "Ready")["reason"] == "Expired"
    assert _cond(permit, "WithinValidity")["status"] == "False"
    assert permit["status"]["workspaces"] == ["ws-idle", "ws-run"]
    # the hub loses its binding in an expired permit's namespace; the gateway keeps its own
    wait_for("hub binding pruned", lambda: {b["metadata"]["name"] for b in kube.items(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")} == {"spe-permit-egress"}, 5)


def test_suspension_stops_workspaces_and_is_reversible_revocation_is_final(kube, permits, world):
    name, ns = _ready_permit(kube, permits)
    make_workspace(kube, world, name, "ws", running=True)
    path = f"{API}/datapermits/{name}"

    kube.merge(path, {"spec": {"suspended": True, "suspensionReason": "security audit of site B"}})
    wait_for("Suspended", lambda: _phase(kube, name) == "Suspended", 5)
    assert kube.workspace(ns, "ws")["spec"]["running"] is False, "stopped before the phase was published"
    cond = wait_for("PermitActive False",
                    lambda: (c := _cond(kube.workspace(ns, "ws"), "PermitActive")) and c["status"] == "False" and c,
                    5)
    assert cond["reason"] in ("PermitSuspended", "Suspended") and "security audit of site B" in cond["message"], cond
    assert "security audit of site B" in kube.permit(name)["status"]["message"]

    kube.merge(path, {"spec": {"suspended": False}})
    wait_for("Active again", lambda: _phase(kube, name) == "Active", 5)

    kube.merge(f"{API}/namespaces/{ns}/workspaces/ws", {"spec": {"running": True}})
    kube.merge(path, {"spec": {"revoked": True, "revocationReason": "data breach"}})
    wait_for("Revoked", lambda: _phase(kube, name) == "Revoked", 5)
    wait_for("ws stopped on revocation", lambda: kube.workspace(ns, "ws")["spec"]["running"] is False, 5)
    wait_for("PermitActive says revoked",
             lambda: _cond(kube.workspace(ns, "ws"), "PermitActive")["reason"] in ("PermitRevoked", "Revoked"), 5)
    status, text = kube.api.raw("PATCH", path, {"spec": {"revoked": False}}, "application/merge-patch+json")
    assert status == 422 and "revocation is final" in text
    wait_for("Issued, Suspended, Active and Revoked events on the permit",
             lambda: {"Issued", "Suspended", "Active", "Revoked"} <= {e["reason"] for e in _events(kube, "default", name)},
             5)


# --- drift ------------------------------------------------------------------------------------

def test_deleted_and_edited_children_are_restored(kube, permits):
    name, ns = _ready_permit(kube, permits)
    np_path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/spe-default-deny"
    old_uid = kube.get(np_path)["metadata"]["uid"]
    t0 = time.monotonic()
    kube.delete(np_path)
    wait_for("default-deny policy re-created",
             lambda: (p := kube.get(np_path)) and p["metadata"]["uid"] != old_uid, DRIFT_REPAIR)
    repaired_np = time.monotonic() - t0

    quota_path = f"/api/v1/namespaces/{ns}/resourcequotas/spe-permit-ceilings"
    kube.merge(quota_path, {"spec": {"hard": {"requests.cpu": "1000", "pods": "1000"}}})
    wait_for("quota restored", lambda: kube.get(quota_path)["spec"]["hard"]["requests.cpu"] == "8"
             and kube.get(quota_path)["spec"]["hard"]["pods"] == "5", DRIFT_REPAIR)

    allow = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/spe-allow-hub-api"
    kube.merge(allow, {"spec": {"egress": [{}]}})  # "allow all egress"
    wait_for("hub api policy restored",
             lambda: policy_table([kube.get(allow)]) == {r for r in GOLDEN_POLICIES if r[0] == "spe-allow-hub-api"},
             DRIFT_REPAIR)

    kube.merge(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    wait_for("pod security restored",
             lambda: kube.get(f"/api/v1/namespaces/{ns}")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
             == "restricted", DRIFT_REPAIR)

    rb = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/spe-permit-hub"
    kube.delete(rb)
    wait_for("hub binding re-created", lambda: kube.get(rb), DRIFT_REPAIR)

    # an extra policy a person adds is theirs, not the permit's: left alone (no owner label)
    extra = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "extra", "namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    kube.create(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", extra)
    print(f"\nnetwork policy re-created {repaired_np:.2f}s after deletion")


def test_deleting_the_permit_removes_its_namespace_and_everything_in_it(kube, permits, world):
    name, ns = _ready_permit(kube, permits)
    make_workspace(kube, world, name, "ws", running=False)
    kube.delete(f"{API}/datapermits/{name}")
    wait_for("namespace deletion started by the garbage collector",
             lambda: (n := kube.get(f"/api/v1/namespaces/{ns}")) is None or n["metadata"].get("deletionTimestamp"),
             RECONCILED)
    wait_for("namespace gone", lambda: kube.get(f"/api/v1/namespaces/{ns}") is None, 90, interval=0.5)
    assert kube.permit(name) is None
    assert "finalizers" not in (kube.get(f"/api/v1/namespaces/{ns}") or {}).get("metadata", {})


def test_the_policies_select_the_workspace_servers_pods(kube, permits, world):
    """The NetworkPolicies and the Workspace reconciler agree on the label of server pods."""
    name, ns = _ready_permit(kube, permits)
    make_workspace(kube, world, name, "ws", running=True)
    pods = wait_for("the workspace's server pod",
                    lambda: kube.items(f"/api/v1/namespaces/{ns}/pods"), 60, interval=0.25)
    policies = {p["metadata"]["name"]: p for p in
                kube.items(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")}
    for pod in pods:
        labels = pod["metadata"].get("labels", {})
        for policy in policies.values():
            selector = policy["spec"]["podSelector"]
            assert all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
            for expr in selector.get("matchExpressions") or []:
                assert expr["operator"] == "Exists" and expr["key"] in labels, (policy["metadata"]["name"], labels)


def test_permit_acts_are_audited(kube, permits, world, exclusive_operator_factory, tmp_path):
    """With an audit log configured, issue, suspension and revocation land in the hash-chained trail."""
    spe_audit = pytest.importorskip("spe_audit")
    import json  # noqa: PLC0415

    log_path = tmp_path / "audit" / "operator.jsonl"
    with exclusive_operator_factory(audit_log_path=str(log_path)):
        name, _ns = _ready_permit(kube, permits, tag="audit")
        path = f"{API}/datapermits/{name}"
        kube.merge(path, {"spec": {"suspended": True, "suspensionReason": "review"}})
        wait_for("Suspended", lambda: _phase(kube, name) == "Suspended", 10)
        kube.merge(path, {"spec": {"revoked": True, "revocationReason": "ended by the access body"}})
        wait_for("Revoked", lambda: _phase(kube, name) == "Revoked", 10)
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    acts = [r["action"] for r in records if r.get("permit") == name]
    for act in ("permit.issued", "permit.suspended", "permit.revoked"):
        assert act in acts, acts
    assert acts.index("permit.issued") < acts.index("permit.suspended") < acts.index("permit.revoked")
    assert spe_audit.verify(log_path).problem is None
