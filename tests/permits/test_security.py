"""Security hardening of permits: a permit never captures a namespace that is not its
own, one bad workspace never blocks its permit's status, and revocation needs no operator."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

import pytest

from spe_api import DataPermitStatus, Reason
from spe_operator.admission.configuration import build_webhook_configuration
from spe_operator.permits.phase import evaluate
from spe_operator.permits.status import ChildrenResult, build_status
from spe_operator.settings import SpeSettings
from spe_dev.api import HttpError

from .conftest import API, make_workspace, wait_for
from .factories import UID, permit, workspace

pytestmark = pytest.mark.permits

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


# --- item 4: one bad workspace name must not block the permit's status ---------------------------

def test_a_workspace_with_a_dotted_name_does_not_block_its_permits_status():
    """Workspaces stored before the name rule may be named "my.ws"; status.workspaces listed
    them under a DNS-label schema, so every status write of the permit was refused for good."""
    p = permit("p1")
    info = evaluate(p, NOW)
    status = build_status(p, info, ChildrenResult(True), [workspace("my.ws"), workspace("ok")], "spe-p1", NOW)
    assert DataPermitStatus.model_validate(status.to_dict()).workspaces == ["my.ws", "ok"]


# --- item 4: a permit's namespace is its own or untouched --------------------------------------------

SETTINGS = SpeSettings()


def _ns(*owners: dict) -> dict:
    return {"metadata": {"name": "spe-p1", "ownerReferences": list(owners)}}


@pytest.mark.parametrize("name, existing, reason", [
    ("p1", None, None),
    ("p1", _ns({"kind": "DataPermit", "name": "p1", "uid": UID}), None),
    ("p1", _ns(), "NamespaceTaken"),
    ("p1", _ns({"kind": "DataPermit", "name": "p1", "uid": "another-uid"}), "NamespaceTaken"),
    ("system", None, "NamespaceReserved"),
])
def test_namespace_refusal(name, existing, reason):
    from spe_operator.permits.namespace import namespace_refusal  # noqa: PLC0415
    refusal = namespace_refusal(permit(name), SETTINGS, existing)
    assert (refusal[0] if refusal else None) == reason
    if refusal:
        assert f"spe-{name}" in refusal[1]


def test_the_operators_own_namespace_is_reserved_whatever_the_settings_call_it():
    from spe_operator.permits.namespace import namespace_refusal  # noqa: PLC0415
    assert namespace_refusal(permit("ops"), SpeSettings(operator_namespace="spe-ops"), None)[0] == \
        Reason.NAMESPACE_RESERVED


def _cond(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def test_a_permit_never_adopts_an_existing_namespace_nor_deletes_it(kube, permits, world):
    name = f"taken-{world['suffix']}-{secrets.token_hex(2)}"
    ns = f"spe-{name}"
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns, "labels": {"team": "someone-else"}}})
    try:
        from .factories import permit_manifest  # noqa: PLC0415
        body = permit_manifest(name)
        body["spec"]["datasets"] = [world["dataset"]]
        kube.create(f"{API}/datapermits", body)
        try:
            p = wait_for("NamespaceReady False, NamespaceTaken",
                         lambda: (p := kube.permit(name)) and (_cond(p, "NamespaceReady") or {}).get("reason")
                         == "NamespaceTaken" and p, 20)
            assert _cond(p, "NamespaceReady")["status"] == "False" and _cond(p, "Ready")["status"] == "False"
            assert ns in _cond(p, "NamespaceReady")["message"]
            live = kube.get(f"/api/v1/namespaces/{ns}")
            assert not live["metadata"].get("ownerReferences"), "the permit adopted a namespace not its own"
            assert "spe.ehds.io/permit" not in live["metadata"]["labels"]
            assert live["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") is None
            assert kube.items(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies") == []
        finally:
            kube.delete(f"{API}/datapermits/{name}")
        wait_for("the permit gone", lambda: kube.permit(name) is None, 20)
        time.sleep(2)  # the garbage collector acts within moments on an owned namespace
        live = kube.get(f"/api/v1/namespaces/{ns}")
        assert live is not None and live["status"]["phase"] == "Active", "deleting the permit deleted the namespace"
    finally:
        kube.delete(f"/api/v1/namespaces/{ns}")


# --- item 12: revocation works while the operator is down -----------------------------------------

def _dead_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again at once: nothing answers there


def test_revocation_and_stops_need_no_operator(kube, permits, world):
    """The webhook configuration stays registered while the operator is away (in-cluster it is a
    static manifest), fail-closed. This one is the manifests' configuration pointing at a port
    where nothing answers -- an operator that is down -- scoped by a label to this test's objects."""
    p = permits()
    name, ns = p["metadata"]["name"], f"spe-{p['metadata']['name']}"
    wait_for("namespace", lambda: kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), 20)
    make_workspace(kube, world, name, "ws", running=True)
    label = {"spe.ehds.io/test-operator-down": secrets.token_hex(4)}
    kube.merge(f"{API}/datapermits/{name}", {"metadata": {"labels": label}})
    kube.merge(f"{API}/namespaces/{ns}/workspaces/ws", {"metadata": {"labels": label}})

    config = build_webhook_configuration(url=f"https://127.0.0.1:{_dead_port()}",
                                         name=f"spe-admission-down-{label['spe.ehds.io/test-operator-down']}")
    for hook in config["webhooks"]:
        hook["objectSelector"] = {"matchLabels": label}
        hook["timeoutSeconds"] = 2
    kube.create("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", config)
    try:
        def refused(path: str, patch: dict) -> bool:
            try:
                kube.api.call("PATCH", path, patch, "application/merge-patch+json")
            except HttpError as err:
                return err.status == 500 and "failed calling webhook" in err.body
            return False
        # The configuration is in force: any other change is refused while the operator is down.
        wait_for("the dead webhook in force", lambda: refused(f"{API}/datapermits/{name}",
                                 {"spec": {"purpose": "A changed purpose while the operator is down."}}), 15)
        assert refused(f"{API}/namespaces/{ns}/workspaces/ws", {"spec": {"idleTimeoutMinutes": 5}})
        # Stopping a workspace and suspending and revoking the permit are admitted all the same.
        stopped = kube.api.call("PATCH", f"{API}/namespaces/{ns}/workspaces/ws", {"spec": {"running": False}},
                                "application/merge-patch+json")
        assert stopped["spec"]["running"] is False
        assert refused(f"{API}/namespaces/{ns}/workspaces/ws", {"spec": {"running": True}}), "a start needs the webhook"
        suspended = kube.api.call("PATCH", f"{API}/datapermits/{name}", {"spec": {
            "suspended": True, "suspensionReason": "incident 42"}}, "application/merge-patch+json")
        assert suspended["spec"]["suspended"] is True
        assert refused(f"{API}/datapermits/{name}", {"spec": {"suspended": False}}), "a resumption needs the webhook"
        revoked = kube.api.call("PATCH", f"{API}/datapermits/{name}", {"spec": {
            "revoked": True, "revocationReason": "breach of the permit's terms"}}, "application/merge-patch+json")
        assert revoked["spec"]["revoked"] is True
    finally:
        kube.delete("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
                    f"spe-admission-down-{label['spe.ehds.io/test-operator-down']}")
