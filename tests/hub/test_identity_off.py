"""No Keycloak configured (the session's operator): identity sync is off, and each permit says
so in a condition; no finalizer, no group, nothing else changes."""

from __future__ import annotations

import pytest

from tests.permits.conftest import kube, permits, wait_for, world  # noqa: F401 - fixtures

pytestmark = pytest.mark.hub


def _cond(obj: dict | None, type_: str) -> dict:
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def test_without_keycloak_the_condition_says_identity_sync_is_off(kube, permits):
    name = permits()["metadata"]["name"]
    permit = wait_for(f"permit {name} Ready",
                      lambda: (p := kube.permit(name)) and _cond(p, "Ready").get("status") == "True"
                      and _cond(p, "IdentitySynced") and p, 30)
    cond = _cond(permit, "IdentitySynced")
    assert (cond["status"], cond["reason"]) == ("Unknown", "IdentityProviderNotConfigured"), cond
    assert "keycloak_url" in cond["message"]
    assert not permit["metadata"].get("finalizers") and "group" not in permit["status"]
