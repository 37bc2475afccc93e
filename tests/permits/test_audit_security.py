"""Audit that cannot be skipped (the operator's side): acts that give access
fail closed, acts that take it away wait for the trail; checkpoints are signed and published;
the OpenTelemetry endpoint is honoured; the manifests configure all of it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from spe_operator.audit import AuditHook

from .conftest import API, wait_for
from .manifests import MANIFESTS, OVERLAYS, kustomize

pytestmark = pytest.mark.permits


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_an_act_that_gives_access_and_cannot_be_recorded_does_not_happen(tmp_path):
    from spe_operator.audit import AuditUnavailable  # noqa: PLC0415
    broken = tmp_path / "operator.jsonl"
    broken.mkdir()  # the trail's file cannot be opened: every write fails, as on a broken volume
    hook = AuditHook.from_settings(str(broken))
    for act in ("permit.issued", "workspace.started", "dataset.mounted"):
        with pytest.raises(AuditUnavailable):
            await hook.record(act, target="Workspace/spe-p1/ws", permit="p1")
    assert hook.backlog == 0, "a refused act leaves no record behind"


async def test_acts_that_take_access_away_wait_for_the_trail_in_order(tmp_path):
    path = tmp_path / "operator.jsonl"
    path.mkdir()
    hook = AuditHook.from_settings(str(path))
    await hook.record("permit.revoked", target="DataPermit/p1", permit="p1")  # never raises
    await hook.record("workspace.stopped", target="Workspace/spe-p1/ws", permit="p1")
    assert hook.backlog == 2
    path.rmdir()  # the volume is back
    await hook.record("permit.issued", target="DataPermit/p2", permit="p2")
    hook.close()
    acts = [r["action"] for r in _records(path) if r["action"] != "audit.checkpoint"]
    assert acts == ["permit.revoked", "workspace.stopped", "permit.issued"]


class _OtlpReceiver:
    """A local OTLP/HTTP receiver: keeps the body of every POST, by path."""

    def __init__(self):
        received: dict[str, list[bytes]] = {}
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def otlp():
    receiver = _OtlpReceiver()
    yield receiver
    receiver.close()


def test_the_operator_signs_publishes_and_exports_its_trail(kube, permits, world, exclusive_operator_factory,
                                                            tmp_path, otlp):
    """An operator run with the settings the manifests give it: checkpoints signed with the key,
    the last one published to a ConfigMap, every record exported to the OTLP endpoint."""
    spe_audit = pytest.importorskip("spe_audit")
    private, public = tmp_path / "key.pem", tmp_path / "key.pub"
    spe_audit.generate_keypair(private, public)
    log_path = tmp_path / "audit" / "operator.jsonl"
    configmap = "spe-audit-checkpoint"  # the one name the manifests' Role lets the operator write
    try:
        with exclusive_operator_factory(audit_log_path=str(log_path), audit_signing_key=str(private),
                                        audit_checkpoint_configmap=configmap, otlp_endpoint=otlp.url):
            body = permits("otel")
            name = body["metadata"]["name"]
            wait_for("permit.issued in the trail",
                     lambda: any(r.get("action") == "permit.issued" and r.get("permit") == name
                                 for r in _records(log_path)) if log_path.exists() else False,
                     20)
        # stopped: the final checkpoint is signed and published, the records exported
        records = _records(log_path)
        checkpoints = [r for r in records if r["action"] == "audit.checkpoint"]
        assert checkpoints and checkpoints[-1]["details"].get("signature"), checkpoints[-1:]
        assert spe_audit.verify(log_path, public_keys=[spe_audit.load_public_key(public)]).problem is None
        published = kube.get(f"/api/v1/namespaces/spe-system/configmaps/{configmap}")
        assert published is not None, "the checkpoint was not published"
        assert int(published["data"]["seq"]) == checkpoints[-1]["details"]["checkpoint"]["seq"]
        assert published["data"]["keyId"]
        exported = b"".join(otlp.received.get("/v1/logs", []))
        assert b"permit.issued" in exported and name.encode() in exported, \
            f"no audit record reached the OTLP endpoint (paths: {sorted(otlp.received)})"
    finally:
        kube.delete(f"/api/v1/namespaces/spe-system/configmaps/{configmap}")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return kustomize(MANIFESTS / "overlays" / request.param)


def test_the_manifests_sign_and_publish_the_operators_trail(rendered):
    config = next(d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("spe-operator-config"))
    data = config["data"]
    deployment = next(d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "spe-operator")
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    key = data["SPE_AUDIT_SIGNING_KEY"]
    mount = next(p for p in mounts if key.startswith(p + "/"))
    assert volumes[mounts[mount]]["secret"]["secretName"] == "spe-audit-signing-key"
    assert not volumes[mounts[mount]]["secret"].get("optional"), "an unsigned trail must not start silently"
    assert data["SPE_AUDIT_CHECKPOINT_CONFIGMAP"] == "spe-audit-checkpoint"
    role = next(d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"] == "spe-operator")
    assert any("configmaps" in r["resources"] and "patch" in r["verbs"]
               and r.get("resourceNames") == ["spe-audit-checkpoint"] for r in role["rules"])
