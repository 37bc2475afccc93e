"""The ValidatingWebhookConfiguration: one pure builder for the manifest and for local runs.

``manifests/base/webhook.yaml`` is this builder's output for the in-cluster Service (a test
keeps them equal); when the operator runs outside the cluster (tests, ``make demo``) it applies
the same configuration with a ``url`` pointing at its loopback address.

Why ``failurePolicy: Fail`` (fail-closed): these rules are access controls of a secure
processing environment -- only a permit's members and datasets in a workspace, only approved
tools, resources within the permit's ceilings, exports only through the egress gateway. With
``Ignore`` every operator restart or outage would silently admit objects that break them. The
price is small and bounded: the rules match only the SPE kinds, never core objects, so the
cluster stays manageable while the operator is down; ``matchConditions`` skip updates that do
not change ``spec`` (finalizers, labels, annotations), so objects can still be cleaned up and
deleted then; and the reconcilers check the same rules again (admission can be bypassed by
someone who deletes this configuration -- the break-glass for a long outage).

Why not Kopf's managed mode (``settings.admission.managed``): it needs create/patch/delete on
every ValidatingWebhookConfiguration in the cluster, removes its non-persistent webhooks when the
operator stops (fail-open exactly when the operator is gone), points at a URL rather than a
Service, and keeps the admission surface out of the reviewed manifests. Here the configuration
is a static, reviewable manifest and the operator only injects the ``caBundle``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from spe_api import GROUP, VERSION

CONFIGURATION_NAME = "spe-admission"
SERVICE_NAME = "spe-operator-webhook"
SERVICE_PORT = 443
TIMEOUT_SECONDS = 10
# Updates that leave spec alone (Kopf's finalizers and annotations, labels) skip the webhook.
SPEC_CHANGED = {
    "name": "spec-changed",
    "expression": "request.operation != 'UPDATE' || !has(oldObject.spec) || object.spec != oldObject.spec",
}


# Stopping access never depends on the operator: an update that only suspends or revokes a
# permit, or only stops a workspace, skips the webhook, so it is admitted while the operator is
# down (fail-closed would otherwise refuse the revocation itself). Nothing is lost by skipping:
# the CRD's CEL rules still require the reasons and keep revocation final, and such a change
# only takes access away. Every other spec field must be unchanged, or the webhook is called.
_PERMIT_STOP_FIELDS = "['suspended', 'suspensionReason', 'revoked', 'revocationReason']"
_WORKSPACE_STOP_FIELDS = "['running']"


def _only_these_changed(fields: str) -> str:
    return (f"object.spec.all(k, k in {fields} || (k in oldObject.spec && object.spec[k] == oldObject.spec[k])) && "
            f"oldObject.spec.all(k, k in {fields} || k in object.spec)")


def _newly_true(field: str) -> str:
    return (f"(has(object.spec.{field}) && object.spec.{field}) && "
            f"!(has(oldObject.spec.{field}) && oldObject.spec.{field})")


PERMIT_NOT_A_STOP = {
    "name": "not-a-suspension-or-revocation",
    "expression": (f"request.operation != 'UPDATE' || !has(oldObject.spec) || !has(object.spec) || "
                   f"!({_only_these_changed(_PERMIT_STOP_FIELDS)} && "
                   f"(({_newly_true('revoked')}) || ({_newly_true('suspended')})))"),
}
WORKSPACE_NOT_A_STOP = {
    "name": "not-a-stop",
    "expression": (f"request.operation != 'UPDATE' || !has(oldObject.spec) || !has(object.spec) || "
                   f"!({_only_these_changed(_WORKSPACE_STOP_FIELDS)} && "
                   f"!(has(object.spec.running) && object.spec.running))"),
}


@dataclass(frozen=True)
class Webhook:
    """One validating webhook: the Kopf handler id (also its URL path) and what it matches."""

    id: str
    plural: str
    operations: tuple[str, ...]
    # Further matchConditions (all must hold for the webhook to be called).
    skip_when: tuple[dict[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.id}.{GROUP}"


WEBHOOKS: tuple[Webhook, ...] = (
    Webhook("validate-datapermit", "datapermits", ("CREATE", "UPDATE"), (PERMIT_NOT_A_STOP,)),
    Webhook("validate-workspace", "workspaces", ("CREATE", "UPDATE"), (WORKSPACE_NOT_A_STOP,)),
    Webhook("validate-outputreview", "outputreviews", ("CREATE",)),
)


def build_webhook_configuration(
    *,
    url: str | None = None,
    service: tuple[str, str] | None = None,
    ca_bundle: bytes | None = None,
    name: str = CONFIGURATION_NAME,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The configuration for a webhook at ``url`` (``https://host:port``) or behind ``service``
    (``(namespace, name)``, port 443). ``ca_bundle`` is PEM; without it the operator injects it."""
    if (url is None) == (service is None):
        raise ValueError("give exactly one of url and service")
    webhooks = []
    for hook in WEBHOOKS:
        if url is not None:
            client_config: dict[str, Any] = {"url": f"{url.rstrip('/')}/{hook.id}"}
        else:
            namespace, svc = service  # type: ignore[misc]
            client_config = {"service": {"namespace": namespace, "name": svc, "path": f"/{hook.id}",
                                         "port": SERVICE_PORT}}
        if ca_bundle:
            client_config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
        entry: dict[str, Any] = {
            "name": hook.name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": client_config,
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "rules": [{
                "apiGroups": [GROUP],
                "apiVersions": [VERSION],
                "operations": list(hook.operations),
                "resources": [hook.plural],
                "scope": "*",
            }],
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
        }
        if "UPDATE" in hook.operations:
            entry["matchConditions"] = [dict(SPEC_CHANGED), *(dict(c) for c in hook.skip_when)]
        webhooks.append(entry)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "spe-operator", "app.kubernetes.io/part-of": "spe",
                       "app.kubernetes.io/component": "admission", **(labels or {})},
        },
        "webhooks": webhooks,
    }


def with_ca_bundle(configuration: dict[str, Any], ca_bundle: bytes, names: set[str] | None = None) -> dict[str, Any]:
    """A copy of a live configuration with ``caBundle`` set on our webhooks (the injection)."""
    names = names or {hook.name for hook in WEBHOOKS}
    encoded = base64.b64encode(ca_bundle).decode("ascii")
    out = {**configuration, "webhooks": []}
    for hook in configuration.get("webhooks", []):
        if hook.get("name") in names:
            hook = {**hook, "clientConfig": {**hook.get("clientConfig", {}), "caBundle": encoded}}
        out["webhooks"].append(hook)
    return out


MANIFEST_HEADER = """\
# Generated by `python -m spe_operator.admission.configuration` from
# operator/spe_operator/admission/configuration.py; do not edit by hand (a test compares them).
#
# The SPE operator's validating webhook, for the rules that need other objects (a Workspace's
# permit, members, datasets, tool and ceilings; who may create an OutputReview; a DataPermit's
# datasets). failurePolicy Fail (fail-closed): these are access controls, and with Ignore every
# operator restart would silently admit objects that break them. Only the SPE kinds are matched,
# and updates that leave spec unchanged skip the webhook (matchConditions), so objects can still
# be cleaned up while the operator is down; so do updates that only suspend or revoke a permit
# or only stop a workspace: stopping access never depends on the operator. The operator injects
# caBundle at start-up from its Secret spe-webhook-tls (see operator/spe_operator/admission/tls.py).
"""


def render_manifest(namespace: str = "spe-system") -> str:
    import yaml  # noqa: PLC0415

    body = build_webhook_configuration(service=(namespace, SERVICE_NAME))
    return MANIFEST_HEADER + yaml.safe_dump(body, sort_keys=False, width=100)


if __name__ == "__main__":  # pragma: no cover
    import sys
    from pathlib import Path

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "manifests/base/webhook.yaml")
    target.write_text(render_manifest())
    print(target)
