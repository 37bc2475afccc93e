"""The installer's settings file: one per overlay, the only thing the overlays differ in, every
key a setting the operator reads, and an unknown key refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spe_operator.cli import main
from spe_operator.doctor.run import read_settings_file
from spe_operator.settings import SpeSettings, UnknownSettingsError
from tests.permits.manifests import MANIFESTS, OVERLAYS, kustomize

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_SOURCES = ROOT / "operator" / "spe_operator"


def _without_comments(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _keys(docs, prefix: str) -> dict[str, str]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(prefix)]
    return cm["data"]


@pytest.fixture(scope="module")
def rendered():
    return {overlay: kustomize(MANIFESTS / "overlays" / overlay) for overlay in OVERLAYS}


def test_overlays_hold_only_a_settings_file():
    listings = {o: sorted(p.name for p in (MANIFESTS / "overlays" / o).iterdir()) for o in OVERLAYS}
    assert all(names == ["kustomization.yaml", "settings.env"] for names in listings.values()), listings
    central, node = (_without_comments(MANIFESTS / "overlays" / o / "kustomization.yaml") for o in OVERLAYS)
    assert central == node, "the overlays' kustomizations must be equal: put a difference in settings.env"
    assert read_settings_file(MANIFESTS / "overlays" / "central" / "settings.env") != \
        read_settings_file(MANIFESTS / "overlays" / "node" / "settings.env")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_file_is_valid_and_strict(overlay):
    values = read_settings_file(MANIFESTS / "overlays" / overlay / "settings.env")
    settings = SpeSettings.from_env(values, strict=True)
    assert settings.federation_role == overlay
    assert settings.default_storage_class in settings.encrypted_storage_classes
    assert settings.idp_issuer_url and settings.idp_issuer_url.startswith("https://")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_key_the_overlays_carry_is_read(rendered, overlay):
    """Each SPE_* key in the rendered operator ConfigMap is a setting, and the operator's code
    reads that setting somewhere besides its definition (SPE_FEDERATION_ROLE was once carried
    and silently ignored)."""
    data = _keys(rendered[overlay], "spe-operator-config")
    assert SpeSettings.unknown_keys(data) == {}
    sources = "\n".join(p.read_text() for p in OPERATOR_SOURCES.rglob("*.py") if p.name != "settings.py")
    unread = [key for key in data
              if not re.search(r"\." + re.escape(key.removeprefix("SPE_").lower()) + r"\b", sources)]
    assert unread == [], f"the overlays carry settings no code reads: {unread}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_reach_every_place_that_needs_them(rendered, overlay):
    docs = rendered[overlay]
    settings = read_settings_file(MANIFESTS / "overlays" / overlay / "settings.env")
    claims = {d["metadata"]["name"]: d["spec"].get("storageClassName") for d in docs
              if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"spe-operator-audit": settings["SPE_DEFAULT_STORAGE_CLASS"],
                      "spe-egress-quarantine": settings["SPE_DEFAULT_STORAGE_CLASS"],
                      "spe-hub-data": settings["SPE_DEFAULT_STORAGE_CLASS"]}
    assert _keys(docs, "spe-egress-config")["SPE_EGRESS_OIDC_ISSUER"] == settings["SPE_IDP_ISSUER_URL"]
    assert _keys(docs, "spe-hub-config")["SPE_HUB_OIDC_ISSUER"] == settings["SPE_IDP_ISSUER_URL"]
    (dep,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "spe-operator"]
    pod = dep["spec"]["template"]["spec"]
    assert "--strict-settings" in pod["containers"][0]["args"]
    # Service links would put SPE_EGRESS_PORT=tcp://... (the Service spe-egress's variables) among
    # the settings of both (the gateway crashed on it in the first real install).
    for name in ("spe-operator", "spe-egress"):
        (dep,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
        assert dep["spec"]["template"]["spec"]["enableServiceLinks"] is False, name


def test_unknown_key_is_refused_with_a_suggestion():
    with pytest.raises(UnknownSettingsError) as err:
        SpeSettings.from_env({"SPE_DEFAULT_STORAGE_CLAS": "x", "SPE_FEDERATION_ROLE": "node"}, strict=True)
    assert err.value.unknown == {"SPE_DEFAULT_STORAGE_CLAS": "SPE_DEFAULT_STORAGE_CLASS"}
    assert "did you mean SPE_DEFAULT_STORAGE_CLASS" in str(err.value)
    # Not strict (a developer's shell full of SPE_DEV_*): read what is known, as before; no
    # federation role set: a stand-alone SPE.
    assert SpeSettings.from_env({"SPE_DEV_HOME": "/x"}).federation_role == "none"


def test_an_invalid_tier_is_refused():
    with pytest.raises(ValueError, match="federation_role"):
        SpeSettings.from_env({"SPE_FEDERATION_ROLE": "hospital"}, strict=True)


def test_operator_refuses_to_start_with_an_unknown_setting(monkeypatch, capsys):
    monkeypatch.setenv("SPE_FEDERATION_ROL", "node")
    assert main(["run", "--strict-settings"]) == 2
    assert "SPE_FEDERATION_ROL (did you mean SPE_FEDERATION_ROLE?)" in capsys.readouterr().err


def test_doctor_refuses_a_settings_file_with_an_unknown_key(tmp_path, capsys):
    path = tmp_path / "settings.env"
    path.write_text((MANIFESTS / "overlays" / "node" / "settings.env").read_text() + "SPE_GPU_MODEL=NVIDIA-A30\n")
    assert main(["doctor", "--settings", str(path)]) == 1
    assert "SPE_GPU_MODEL (did you mean SPE_GPU_MODELS?)" in capsys.readouterr().err
