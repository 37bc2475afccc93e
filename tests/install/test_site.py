"""`spe-operator site`: the installation's directory renders with the overlay, carries
generated Secrets (never replaced), and a second run keeps the site's own lines."""

from __future__ import annotations

import base64

import pytest
import yaml

from spe_operator.cli import main
from tests.permits.manifests import MANIFESTS, kustomize

pytestmark = pytest.mark.install

DIGEST = "sha256:" + "1" * 64


def test_site_renders_with_settings_secrets_and_images(tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["site", str(site), "--overlay", str(MANIFESTS / "overlays" / "node"),
                 "--image", f"operator=registry.example/spe/operator@{DIGEST}",
                 "--image", "egress=registry.example/spe/egress:1.2", "--image", f"hub=registry.example/spe/hub@{DIGEST}",
                 "--hub-oidc-client-secret", "from-the-idp"]) == 0
    assert "kubectl apply --server-side -k" in capsys.readouterr().out
    (site / "settings.env").write_text((site / "settings.env").read_text().replace(
        "hospital-encrypted", "ceph-luks"))
    docs = kustomize(site)
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    secrets = {name for kind, name in by if kind == "Secret"}
    assert secrets == {"spe-audit-signing-key", "spe-egress-key", "spe-egress-oidc", "spe-hub-keys", "spe-hub-oidc"}
    assert set(by[("Secret", "spe-audit-signing-key")]["data"]) == {"key.pem"}
    assert set(by[("Secret", "spe-hub-keys")]["data"]) == {"crypt-key", "proxy-token"}
    assert base64.b64decode(by[("Secret", "spe-hub-oidc")]["data"]["client-secret"]) == b"from-the-idp"
    for name in ("spe-hub", "spe-proxy"):
        assert by[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["image"] == \
            f"registry.example/spe/hub@{DIGEST}"
    assert by[("PersistentVolumeClaim", "spe-operator-audit")]["spec"]["storageClassName"] == "ceph-luks"
    operator = by[("Deployment", "spe-operator")]["spec"]["template"]["spec"]["containers"][0]
    assert operator["image"] == f"registry.example/spe/operator@{DIGEST}"
    assert by[("Deployment", "spe-egress")]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.example/spe/egress:1.2"
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("spe-operator-config")]
    assert config["data"]["SPE_DEFAULT_STORAGE_CLASS"] == "ceph-luks"
    assert oct((site / "secrets" / "egress-key").stat().st_mode & 0o777) == "0o600"


def test_a_second_run_keeps_keys_settings_and_the_sites_own_lines(tmp_path):
    site = tmp_path / "site"
    overlay = str(MANIFESTS / "overlays" / "node")
    assert main(["site", str(site), "--overlay", overlay, "--image", f"egress=registry.example/spe/egress@{DIGEST}"]) == 0
    key = (site / "secrets" / "audit-signing-key.pem").read_bytes()
    (site / "settings.env").write_text((site / "settings.env").read_text().replace(
        "SPE_GPU_MODELS=\n", "SPE_GPU_MODELS=NVIDIA-A30\n"))
    doc = yaml.safe_load((site / "kustomization.yaml").read_text())
    doc["patches"] = [{"target": {"kind": "NetworkPolicy", "name": "spe-system-allow-api-server"},
                       "patch": yaml.safe_dump([{"op": "add", "path": "/spec/egress/0/ports/-",
                                                 "value": {"protocol": "TCP", "port": 16443}}])}]
    (site / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    assert main(["site", str(site), "--overlay", overlay,
                 "--image", f"operator=registry.example/spe/operator@{DIGEST}"]) == 0
    assert (site / "secrets" / "audit-signing-key.pem").read_bytes() == key
    assert "SPE_GPU_MODELS=NVIDIA-A30" in (site / "settings.env").read_text()
    doc = yaml.safe_load((site / "kustomization.yaml").read_text())
    assert doc["patches"][0]["target"]["name"] == "spe-system-allow-api-server"
    assert {i["name"] for i in doc["images"]} == {"example.invalid/spe/operator", "example.invalid/spe/egress"}
    docs = kustomize(site)
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "spe-system-allow-api-server"]
    assert {"protocol": "TCP", "port": 16443} in policy["spec"]["egress"][0]["ports"]


def test_site_refuses_a_directory_that_is_not_an_overlay(tmp_path, capsys):
    assert main(["site", str(tmp_path / "s"), "--overlay", str(tmp_path)]) == 1
    assert "not an overlay" in capsys.readouterr().err
