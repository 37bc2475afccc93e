"""`make demo`'s site (devtools/spe_dev/demo.py), rendered with kustomize without a cluster:
the installer's settings file plus only the lines an embedded cluster needs."""

from __future__ import annotations

import pytest
import yaml

from spe_dev.demo import demo_kustomization, edit_settings, site_patches
from spe_operator.cli import main
from tests.permits.manifests import MANIFESTS, kustomize

pytestmark = pytest.mark.install

DIGEST = "sha256:" + "2" * 64


def test_edit_settings_sets_keys_keeps_comments_and_appends_new_ones(tmp_path):
    path = tmp_path / "settings.env"
    path.write_text("# the class\nSPE_DEFAULT_STORAGE_CLASS=hospital-encrypted\n# SPE_GPU_MODELS=x\nSPE_GPU_MODELS=\n")
    edit_settings(path, {"SPE_DEFAULT_STORAGE_CLASS": "spe-demo-encrypted", "SPE_INGEST_CPU": "1"})
    assert path.read_text() == ("# the class\nSPE_DEFAULT_STORAGE_CLASS=spe-demo-encrypted\n# SPE_GPU_MODELS=x\n"
                                "SPE_GPU_MODELS=\nSPE_INGEST_CPU=1\n")


def test_the_demo_site_renders_the_overlay_with_its_lines(tmp_path):
    site = tmp_path / "site"
    assert main(["site", str(site), "--overlay", str(MANIFESTS / "overlays" / "node"),
                 *[f"--image={n}=localhost/spe-{n}@{DIGEST}" for n in ("operator", "egress", "hub")]]) == 0
    edit_settings(site / "settings.env", {"SPE_DEFAULT_STORAGE_CLASS": "spe-demo-encrypted"})
    (site / "dataset-signing.pub").write_text("-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n")
    kfile = site / "kustomization.yaml"
    doc = demo_kustomization(yaml.safe_load(kfile.read_text()), hub_url="http://127.0.0.1:8300",
                             gateway_url="http://127.0.0.1:8390", pod_issuer="http://198.18.66.1:18380/realms/spe",
                             patches=site_patches(36743, 18380, "198.18.66.1", tmp_path / "volumes"))
    kfile.write_text(yaml.safe_dump(doc))
    docs = kustomize(site)
    by = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "ConfigMap" and
           d["metadata"]["name"].startswith(("spe-hub-config", "spe-egress-config", "spe-operator-config"))
           else d["metadata"]["name"]): d for d in docs}
    api = by[("NetworkPolicy", "spe-system-allow-api-server")]["spec"]["egress"][0]["ports"]
    assert {p["port"] for p in api} == {443, 6443, 36743, 18380}
    dns = by[("NetworkPolicy", "spe-system-allow-dns")]["spec"]["egress"]
    assert dns[-1]["to"] == [{"ipBlock": {"cidr": "198.18.66.1/32"}}]
    assert by[("ConfigMap", "spe-operator-guardrails")]["data"]["hostPathPrefixes"] == f"{tmp_path / 'volumes'}/"
    for name in ("spe-hub", "spe-proxy", "spe-egress"):
        pod = by[("Deployment", name)]["spec"]["template"]["spec"]
        assert pod["dnsPolicy"] == "None" and pod["dnsConfig"]["nameservers"] == ["198.18.66.1"], name
    assert by[("Deployment", "spe-operator")]["spec"]["template"]["spec"].get("dnsPolicy") != "None"
    hub = by[("ConfigMap", "spe-hub-config")]["data"]
    assert hub["SPE_HUB_PUBLIC_URL"] == "http://127.0.0.1:8300"
    assert hub["SPE_HUB_OIDC_INTERNAL_ISSUER"] == "http://198.18.66.1:18380/realms/spe"
    assert by[("ConfigMap", "spe-egress-config")]["data"]["SPE_EGRESS_PUBLIC_URL"] == "http://127.0.0.1:8390"
    operator = by[("ConfigMap", "spe-operator-config")]["data"]
    assert operator["SPE_DEFAULT_STORAGE_CLASS"] == "spe-demo-encrypted"
    assert operator["SPE_DATASET_PUBLIC_KEY"].startswith("-----BEGIN PUBLIC KEY-----")
