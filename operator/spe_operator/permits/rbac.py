"""Access of the hub and the egress gateway to one permit's namespace.

How the grant is made, and why (the choice the RBAC escalation rule forces):
Kubernetes lets a subject write a Role or RoleBinding only for permissions it holds itself,
unless it has ``escalate`` (on roles) or ``bind`` (on the role a binding references).

- Holding the permissions itself would give the operator cluster-wide ``secrets`` access (the
  hub writes its credentials Secret, the gateway its review records, and permit namespaces
  come and go, so only a ClusterRole could cover them): the operator could then read every
  Secret in the cluster, ``kube-system`` included.
- ``escalate`` on roles lets the operator write *any* Role, i.e. grant itself anything in any
  namespace: worse.
- So the verbs live in two fixed ClusterRoles, ``spe-permit-hub`` and ``spe-permit-egress``
  (installed by ``manifests/base``; a test keeps that file equal to :func:`permit_cluster_roles`),
  which grant nothing by themselves. Per permit the operator writes RoleBindings *in the
  permit's namespace* that bind them to the hub's and the gateway's service accounts, which
  confines them to that namespace: nothing cluster-wide. The operator holds only ``bind`` on
  exactly these two ClusterRoles (``resourceNames``), and no ``secrets`` access at all.
- What RBAC cannot express -- bind them only in permit namespaces, only to these two service
  accounts -- ValidatingAdmissionPolicies on the operator's own requests enforce
  (``manifests/base/operator-guardrails.yaml``).

The hub's binding exists while the permit is Pending, Active or Suspended; an Expired or
Revoked permit's namespace has nothing the hub may start, so the binding is pruned (an
extended ``notAfter`` restores it).
"""

from __future__ import annotations

from typing import Any

from spe_api import GROUP, DataPermit, DataPermitPhase, permit_namespace

from ..settings import SpeSettings
from .phase import HUB_ACCESS_PHASES

HUB_ROLE = "spe-permit-hub"
EGRESS_ROLE = "spe-permit-egress"
RBAC_API = "rbac.authorization.k8s.io"


def _rule(api_group: str, resources: list[str], verbs: list[str], why: str) -> dict[str, Any]:
    # ``why`` is kept next to the verbs in the source; the manifest gets it as a comment.
    return {"apiGroups": [api_group], "resources": resources, "verbs": verbs, "_why": why}


HUB_RULES = [
    _rule(GROUP, ["workspaces"], ["get", "list", "watch"],
          "list the workspaces a logged-in member may use and follow their status (server URL, "
          "Ready) while spawning"),
    _rule(GROUP, ["workspaces"], ["patch"],
          "the spawner's only writes: spec.running true/false and the last-activity annotation "
          "(for the idle stop); no create/delete, the platform operator makes workspaces"),
    _rule("", ["secrets"], ["create", "get", "patch", "update", "delete"],
          "the hub's per-server credentials Secret (API token, OAuth client) that the workspace "
          "pod reads: created on start, rotated on restart, deleted on stop. No list/watch: "
          "names are known, and listing would expose every Secret of the namespace"),
]

EGRESS_RULES = [
    _rule(GROUP, ["workspaces"], ["get"],
          "check that the requester of an export is a member of the workspace it comes from"),
    _rule(GROUP, ["outputreviews"], ["create"],
          "an export request becomes an OutputReview. Reading, listing and the finalizer's patch "
          "are granted cluster-wide on OutputReviews alone (manifests/base/egress-rbac.yaml), so "
          "they outlive this binding while a permit's namespace is deleted. No delete"),
    _rule(GROUP, ["outputreviews/status"], ["patch"],
          "the gateway projects the checks, the votes and the decision into the review's status"),
    # No Secrets: the gateway's record of a review lives on its own volume, sealed with its own
    # key; a role on Secrets here would let it list the hub's per-server credentials.
]


def _strip(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rules]


def permit_cluster_roles() -> list[dict[str, Any]]:
    """The two ClusterRoles the per-permit RoleBindings reference (installed by the manifests)."""
    def role(name: str, component: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": f"{RBAC_API}/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {
                "app.kubernetes.io/part-of": "spe", "app.kubernetes.io/component": component}},
            "rules": _strip(rules),
        }
    return [role(HUB_ROLE, "hub", HUB_RULES), role(EGRESS_ROLE, "egress-gateway", EGRESS_RULES)]


def _binding(name: str, namespace: str, role: str, sa: str, sa_namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_API}/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        # roleRef is immutable: the binding is named after the role, so a different role is a
        # different binding (apply the new, prune the old) rather than a failing update.
        "roleRef": {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_namespace}],
    }


def build_role_bindings(permit: DataPermit, settings: SpeSettings, phase: DataPermitPhase) -> list[dict[str, Any]]:
    ns = permit_namespace(permit.name)
    home = settings.operator_namespace
    out = []
    if phase in HUB_ACCESS_PHASES:
        out.append(_binding(HUB_ROLE, ns, HUB_ROLE, settings.hub_service_account, home))
    # The gateway keeps its access in every phase: reviews of earlier requests are decided and
    # released (or expire) after the permit ends; it refuses *new* requests by the permit's phase.
    out.append(_binding(EGRESS_ROLE, ns, EGRESS_ROLE, settings.egress_service_account, home))
    return out


def render_permit_roles_manifest() -> str:
    """``manifests/base/permit-roles.yaml``: the two ClusterRoles, each rule with its reason
    (``python -m spe_operator.permits.rbac > manifests/base/permit-roles.yaml``; a test keeps
    the file equal to :func:`permit_cluster_roles`)."""
    import yaml  # noqa: PLC0415

    out = ["# Generated by `python -m spe_operator.permits.rbac` from operator/spe_operator/permits/rbac.py;",
           "# do not edit by hand (a test compares them).",
           "#",
           "# Templates of a permit namespace's access: they grant nothing until the operator binds them with a",
           "# RoleBinding inside a permit's namespace (spe-<permit>) to the hub's or the gateway's service account.",
           "# The operator holds `bind` on exactly these two, so it never needs their verbs (secrets!) itself."]
    for name, rules in ((HUB_ROLE, HUB_RULES), (EGRESS_ROLE, EGRESS_RULES)):
        role = next(r for r in permit_cluster_roles() if r["metadata"]["name"] == name)
        out.append("---")
        head = {k: v for k, v in role.items() if k != "rules"}
        out.append(yaml.safe_dump(head, sort_keys=False).rstrip())
        out.append("rules:")
        for rule, clean in zip(rules, role["rules"]):
            out.append(f"# {rule['_why']}")
            body = yaml.safe_dump([clean], sort_keys=False, default_flow_style=None).rstrip()
            out.append(body)
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render_permit_roles_manifest(), end="")
