"""The API on the real API server: CRDs install, examples are accepted, bad manifests refused.

Cluster-scoped objects are shared by every session using the cluster, so each module run gives
its objects a random suffix (``rename``). Refusal cases run with ``--dry-run=server`` (the
schema, CEL and the webhook all run; nothing is stored), updates as server-side apply.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import yaml

from .helpers import DELETE, edit, example

pytestmark = pytest.mark.api

GATEWAY_SA = ("spe-system", "spe-egress")


# --- set-up ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crds(spe_crds):
    cluster = spe_crds
    # Discovery (and with it kubectl's short names) catches up a moment after Established.
    deadline = time.monotonic() + 30
    while cluster.kubectl("get", "dp,dset,ws,or,tool", "-A").returncode != 0:
        assert time.monotonic() < deadline, "short names never became resolvable"
        time.sleep(0.5)
    return cluster


class World:
    """The examples, renamed with a suffix, and how to talk to the cluster about them."""

    def __init__(self, cluster, suffix: str):
        self.cluster = cluster
        self.suffix = suffix
        self.manifests = {key: self.rename(example(key)) for key in
                          ("prostate-mr", "lung-ct", "tool", "permit", "workspace", "review")}

    def n(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    @property
    def permit_name(self) -> str:
        return self.n("prostate-lung-ai")

    @property
    def ns(self) -> str:
        return f"spe-{self.permit_name}"

    def rename(self, manifest: dict[str, Any]) -> dict[str, Any]:
        m = json.loads(json.dumps(manifest))
        m["metadata"]["name"] = self.n(m["metadata"]["name"])
        spec = m["spec"]
        if m["kind"] == "DataPermit":
            spec["permitId"] = f"{spec['permitId']}-{self.suffix}"
        if m["kind"] in ("Workspace", "OutputReview"):
            m["metadata"]["namespace"] = f"spe-{self.n('prostate-lung-ai')}"
        if "datasets" in spec:
            spec["datasets"] = [self.n(d) for d in spec["datasets"]]
        for ref in ("permit", "tool", "workspace"):
            if ref in spec:
                spec[ref] = self.n(spec[ref])
        return m

    def kubectl(self, *args: str, manifest: dict | None = None, as_gateway: bool = False):
        extra = []
        if as_gateway:
            extra = [f"--as=system:serviceaccount:{GATEWAY_SA[0]}:{GATEWAY_SA[1]}", "--as-group=system:masters"]
        return self.cluster.kubectl(*extra, *args, input=yaml.safe_dump(manifest) if manifest else None)

    def create(self, manifest: dict, *, dry_run: bool = False, as_gateway: bool = False):
        args = ["create", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
        return self.kubectl(*args, manifest=manifest, as_gateway=as_gateway)

    def update(self, manifest: dict, *, dry_run: bool = True, as_gateway: bool = False):
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=spe-api-tests", "-f", "-"]
        return self.kubectl(*args + (["--dry-run=server"] if dry_run else []), manifest=manifest,
                            as_gateway=as_gateway)


def _ensure_namespace(cluster, name: str) -> None:
    result = cluster.kubectl("create", "namespace", name)
    assert result.returncode == 0 or "AlreadyExists" in result.stderr, result.stderr


@pytest.fixture(scope="module")
def world(crds, operator):
    """Every example created for real (the permit's namespace made if the operator has not yet)."""
    w = World(crds, secrets.token_hex(3))
    created = []
    try:
        for key in ("prostate-mr", "lung-ct", "tool", "permit"):
            result = w.create(w.manifests[key])
            assert result.returncode == 0, f"example {key} refused:\n{result.stderr}"
            created.append(w.manifests[key])
        _ensure_namespace(crds, w.ns)
        result = w.create(w.manifests["workspace"])
        assert result.returncode == 0, f"example workspace refused:\n{result.stderr}"
        result = w.create(w.manifests["review"], as_gateway=True)
        assert result.returncode == 0, f"example outputreview refused:\n{result.stderr}"
        yield w
    finally:  # also when the set-up itself failed: cluster-scoped leftovers outlive the session
        crds.kubectl("delete", "namespace", w.ns, "--wait=false", "--ignore-not-found")
        for manifest in reversed(created):
            crds.kubectl("delete", manifest["kind"].lower(), manifest["metadata"]["name"], "--wait=false")


def _contains(stored: Any, wanted: Any) -> bool:
    """Everything we wrote is kept (the server may add defaults)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(k in stored and _contains(stored[k], v) for k, v in wanted.items())
    return stored == wanted


# --- the good path --------------------------------------------------------------------------

def test_every_example_is_accepted_and_stored_with_defaults(world):
    for key, manifest in world.manifests.items():
        kind = manifest["kind"].lower()
        args = ["get", kind, manifest["metadata"]["name"], "-o", "json"]
        if "namespace" in manifest["metadata"]:
            args += ["-n", manifest["metadata"]["namespace"]]
        result = world.kubectl(*args)
        assert result.returncode == 0, f"{key}: {result.stderr}"
        stored = json.loads(result.stdout)
        assert _contains(stored["spec"], manifest["spec"]), f"{key}: the stored spec lost or changed a field"
    permit = json.loads(world.kubectl("get", "dp", world.permit_name, "-o", "json").stdout)
    # Defaults the API server filled in from the schema:
    assert permit["spec"]["suspended"] is False and permit["spec"]["revoked"] is False
    ws = json.loads(world.kubectl("get", "ws", world.n("segmentation"), "-n", world.ns, "-o", "json").stdout)
    assert ws["spec"]["resources"]["gpus"] == {"count": 1, "model": "NVIDIA-L40S"}
    ds = json.loads(world.kubectl("get", "dset", world.n("lung-ct"), "-o", "json").stdout)
    assert ds["spec"]["source"]["claimNamespace"] == "spe-system" and ds["spec"]["anonymisation"]["dateShiftMaxDays"] == 365
    assert ds["spec"]["kAnonymity"]["quasiIdentifiers"] == ["PatientSex", "PatientAge", "PatientSize", "PatientWeight"]


def test_kubectl_get_shows_useful_columns(world):
    # "ds" is also apps/DaemonSet's short name, and kubectl prefers the built-in one (with a
    # warning); "dset" is the Dataset's unambiguous short name.
    result = world.kubectl("get", "dp,dset,ws,or,tool", "-A")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    shadowed = world.kubectl("get", "ds", "-A")
    assert "could also match lower priority resource datasets.spe.ehds.io" in shadowed.stderr
    assert "2028-06-30T23:59:59Z" in out  # Not After as a timestamp, not "<invalid>"
    for header in ("PERMIT ID", "NOT AFTER", "PATIENTS", "PERMIT", "TOOL", "RUNNING", "GPUS", "REQUESTER",
                   "APPROVALS", "KIND", "GPU", "APPROVED BY", "PHASE", "AGE"):
        assert header in out, f"{header} not in:\n{out}"
    for value in (f"HDAB-NL-2026-0042-{world.suffix}", world.n("segmentation"), "jupyterlab-monai-" + world.suffix,
                  "security-officer@spe.example.eu", "a.jansen@radboudumc.nl"):
        assert value in out, f"{value} not in:\n{out}"
    wide = world.kubectl("get", "ws", "-n", world.ns, "-o", "wide").stdout
    assert "NVIDIA-L40S" in wide
    spe = world.kubectl("get", "spe", "-A").stdout  # the category
    assert world.permit_name in spe and world.n("prostate-mr") in spe


def test_kubectl_explain(crds):
    deadline = time.monotonic() + 30
    while True:  # the OpenAPI document is published a little after the CRD is established
        result = crds.kubectl("explain", "workspace.spec.resources")
        if result.returncode == 0 and "gpus" in result.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    for text in ("CPU, memory and GPUs of the server", "cpu", "memory", "gpus", "GPUs; absent for a CPU-only workspace",
                 "CPU cores requested"):
        assert text in result.stdout, f"{text!r} not in:\n{result.stdout}"
    permit = " ".join(crds.kubectl("explain", "datapermit.spec.exportPolicy.disclosure.dominance").stdout.split())
    assert "(n, k) dominance rule" in permit and "contributors <integer>" in permit and "share <number>" in permit
    top = " ".join(crds.kubectl("explain", "dp").stdout.split())
    assert "data access body" in top


# --- refusals -------------------------------------------------------------------------------

def _ws(w: World, **changes) -> dict:
    return edit(w.manifests["workspace"], **{"metadata__name": w.n("other"), **changes})


def _permit(w: World, **changes) -> dict:
    return edit(w.manifests["permit"], **{"metadata__name": w.n("other-permit"),
                                          "spec__permitId": f"HDAB-T-{w.suffix}", **changes})


def _tool(w: World, **changes) -> dict:
    return edit(w.manifests["tool"], metadata__name=w.n("other-tool"), **changes)


def _ds(w: World, **changes) -> dict:
    return edit(w.manifests["lung-ct"], metadata__name=w.n("other-ds"), **changes)


def _review(w: World, **changes) -> dict:
    return edit(w.manifests["review"], metadata__name=w.n("other-review"), **changes)


A = "a" * 64
# (id, build(world) -> manifest, how: "create" | "create-gateway" | "update" | "update-gateway", expected texts)
CASES = [
    # --- OpenAPI schema ---
    ("schema: tier out of range", lambda w: _permit(w, spec__tier=4),
     "create", ["spec.tier", "less than or equal to 3"]),
    ("schema: cpu not a quantity", lambda w: _ws(w, spec__resources__cpu="four"),
     "create", ["spec.resources.cpu", "should match"]),
    ("schema: image not pinned by digest", lambda w: _tool(w, spec__image="ghcr.io/ehds-spe/notebook:latest"),
     "create", ["spec.image", "should match", "@sha256:"]),
    ("CEL: image pinned to the placeholder digest",
     lambda w: _tool(w, spec__image="ghcr.io/ehds-spe/notebook@sha256:" + "0" * 64),
     "create", ["spec.image", "all-zero placeholder digest"]),
    ("schema: dataset name not DNS-1123", lambda w: _permit(w, spec__datasets=["Prostate_MR"]),
     "create", ["spec.datasets[0]", "should match"]),
    ("schema: notAfter not a date-time", lambda w: _permit(w, spec__notAfter="next year"),
     "create", ["spec.notAfter", "date-time"]),
    ("schema: tool required", lambda w: _ws(w, spec__tool=DELETE),
     "create", ["spec.tool", "Required value"]),
    ("schema: unknown member role", lambda w: _permit(w, spec__members__0__role="admin"),
     "create", ["spec.members[0].role", "Unsupported value", '"researcher"']),
    ("schema: unknown anonymisation option", lambda w: _ds(w, spec__anonymisation__options=["blur-faces"]),
     "create", ["spec.anonymisation.options[0]", "Unsupported value"]),
    ("schema: sha256 not hex", lambda w: _review(w, spec__files__0__sha256="Z" * 64),
     "create-gateway", ["spec.files[0].sha256", "should match"]),
    ("schema: negative idle timeout", lambda w: _ws(w, spec__idleTimeoutMinutes=-1),
     "create", ["spec.idleTimeoutMinutes", "greater than or equal to 0"]),
    ("schema: no members", lambda w: _permit(w, spec__members=[]),
     "create", ["spec.members", "at least 1 items"]),
    ("schema: zero reviewers", lambda w: _permit(w, spec__exportPolicy__reviewersRequired=0),
     "create", ["spec.exportPolicy.reviewersRequired", "greater than or equal to 1"]),
    ("schema: short justification", lambda w: _review(w, spec__justification="pls"),
     "create-gateway", ["spec.justification", "at least 10 chars"]),
    ("schema: unknown tool kind", lambda w: _tool(w, spec__kind="vm"),
     "create", ["spec.kind", "Unsupported value", '"jupyter"']),
    ("schema: storage size in GB", lambda w: _ws(w, spec__storage__size="10GB"),
     "create", ["spec.storage.size", "should match"]),
    ("schema: duplicate export file", lambda w: _review(w, spec__files=[w.manifests["review"]["spec"]["files"][0]] * 2),
     "create-gateway", ["spec.files[1]", "Duplicate value"]),
    ("schema: k below 2", lambda w: _ds(w, spec__kAnonymity__threshold=1),
     "create", ["spec.kAnonymity.threshold", "greater than or equal to 2"]),
    # --- CEL, one object ---
    ("cel: notAfter before notBefore", lambda w: _permit(w, spec__notAfter="2025-12-31T00:00:00Z"),
     "create", ["spec.notAfter: Invalid value", "spec.notAfter must be after spec.notBefore"]),
    ("cel: duplicate member", lambda w: _permit(w, spec__members__1__subject="a.jansen@radboudumc.nl"),
     "create", ["spec.members subjects must be unique"]),
    ("cel: duplicate dataset", lambda w: _permit(w, spec__datasets=[w.n("lung-ct"), w.n("lung-ct")]),
     "create", ["spec.datasets must be unique"]),
    ("cel: zero gpus", lambda w: _ws(w, spec__resources__gpus__count=0),
     "create", ["spec.resources.gpus.count must be between 1 and 8"]),
    ("cel: nine gpus", lambda w: _ws(w, spec__resources__gpus__count=9),
     "create", ["spec.resources.gpus.count: Invalid value", "spec.resources.gpus.count must be between 1 and 8"]),
    ("cel: duplicate workspace dataset", lambda w: _ws(w, spec__datasets=[w.n("lung-ct"), w.n("lung-ct")]),
     "create", ["spec.datasets must be unique"]),
    ("cel: suspended without reason", lambda w: _permit(w, spec__suspended=True),
     "create", ["spec.suspensionReason is required when spec.suspended is true"]),
    ("cel: revoked without reason", lambda w: _permit(w, spec__revoked=True),
     "create", ["spec.revocationReason is required when spec.revoked is true"]),
    ("cel: both date options", lambda w: _ds(w, spec__anonymisation__options=[
        "retain-longitudinal-full-dates", "retain-longitudinal-modified-dates"]),
     "create", ["choose either retain-longitudinal-full-dates or retain-longitudinal-modified-dates"]),
    ("cel: record-level outputs without basis", lambda w: _permit(w, spec__exportPolicy__recordLevelOutputs={"allowed": True}),
     "create", ["spec.exportPolicy.recordLevelOutputs.basis is required when allowed is true"]),
    ("cel: record-level outputs with one reviewer", lambda w: _permit(
        w, spec__exportPolicy__reviewersRequired=1,
        spec__exportPolicy__recordLevelOutputs={"allowed": True, "basis": "Permit HDAB-NL-2026-0042, clause 7.3"}),
     "create", ["spec.exportPolicy.reviewersRequired must be at least 2 when recordLevelOutputs.allowed is true"]),
    ("cel: export path escapes", lambda w: _review(w, spec__files__0__name="../home/.ssh/id_rsa"),
     "create-gateway", ["spec.files[].name must be a relative path"]),
    ("cel: critical findings approved", lambda w: _tool(w, spec__approval__scan__critical=1),
     "create", ["spec.approval.scan.critical must be 0"]),
    ("cel: workspace name too long", lambda w: _ws(w, metadata__name="w" * 41),
     "create", ["metadata.name must be at most 40 characters for a Workspace"]),
    ("cel: permit name too long", lambda w: _permit(w, metadata__name="p" * 60),
     "create", ["metadata.name must be at most 59 characters for a DataPermit"]),
    ("cel: source path with ..", lambda w: _ds(w, spec__source__path="/exports/../etc"),
     "create", ["spec.source.path must not contain '..' segments"]),
    # --- CEL transition rules, on update of the examples ---
    ("cel: workspace permit immutable", lambda w: edit(w.manifests["workspace"], spec__permit=w.n("other-permit")),
     "update", ["spec.permit is immutable"]),
    ("cel: permit id immutable", lambda w: edit(w.manifests["permit"], spec__permitId="HDAB-NL-2026-9999"),
     "update", ["spec.permitId is immutable"]),
    ("cel: dataset source immutable", lambda w: edit(w.manifests["lung-ct"], spec__source__path="/exports/other"),
     "update", ["spec.source is immutable"]),
    ("cel: output review immutable", lambda w: edit(w.manifests["review"], spec__justification="Changed after checks ran."),
     "update-gateway", ["spec is immutable"]),
    ("cel: new image needs new approval", lambda w: edit(w.manifests["tool"], spec__image=
        "ghcr.io/ehds-spe/notebook-monai:2026.12@sha256:" + A),
     "update", ["changing spec.image invalidates the approval"]),
    # --- the webhook: rules that need other objects ---
    ("webhook: permit missing", lambda w: _ws(w, spec__permit=w.n("no-such-permit")),
     "create", ["denied the request", "spec.permit: DataPermit", "does not exist"]),
    ("webhook: wrong namespace", lambda w: _ws(w, metadata__namespace="default"),
     "create", ["metadata.namespace: 'default' is not the namespace", "create the Workspace in namespace"]),
    ("webhook: member outside permit", lambda w: _ws(w, spec__members=["eve@example.org"]),
     "create", ["spec.members: 'eve@example.org' is not a member of DataPermit"]),
    ("webhook: dataset outside permit", lambda w: _ws(w, spec__datasets=[w.n("breast-mg")]),
     "create", ["spec.datasets:", "is not granted by DataPermit"]),
    ("webhook: tool missing", lambda w: _ws(w, spec__tool=w.n("rstudio")),
     "create", ["spec.tool: Tool", "does not exist", "jupyterlab-monai-"]),
    ("webhook: gpu model not permitted", lambda w: _ws(w, spec__resources__gpus__model="NVIDIA-H100"),
     "create", ["spec.resources.gpus.model: 'NVIDIA-H100' is not permitted", "NVIDIA-A30 x2, NVIDIA-L40S x1"]),
    ("webhook: gpu held by the running example", lambda w: _ws(w),
     "create", ["spec.resources.gpus.count: 1 x NVIDIA-L40S exceeds", "held by its other running workspaces 1", "left 0"]),
    ("webhook: cpu over ceiling", lambda w: _ws(w, spec__resources__gpus=DELETE, spec__resources__cpu="25"),
     "create", ["spec.resources.cpu: 25 exceeds", "ceiling 32", "held by its other running workspaces 8", "left 24"]),
    ("webhook: memory over ceiling", lambda w: _ws(w, spec__resources__gpus=DELETE, spec__resources__memory="100Gi"),
     "create", ["spec.resources.memory: 100Gi exceeds", "left 96Gi"]),
    ("webhook: output review not from the gateway", lambda w: _review(w),
     "create", ["only the egress gateway", "system:serviceaccount:spe-system:spe-egress"]),
    ("webhook: requester not in workspace", lambda w: _review(w, spec__requester="l.garcia@isciii.es"),
     "create-gateway", ["spec.requester: 'l.garcia@isciii.es' is not a member of Workspace"]),
    ("webhook: permit names a missing dataset", lambda w: _permit(w, spec__datasets=[w.n("lung-ct"), w.n("breast-mg")]),
     "create", ["spec.datasets: Dataset", "breast-mg", "does not exist"]),
    ("webhook: permit id taken", lambda w: _permit(w, spec__permitId=w.manifests["permit"]["spec"]["permitId"]),
     "create", ["spec.permitId: 'HDAB-NL-2026-0042-", "is already used by DataPermit 'prostate-lung-ai-"]),
    # --- hardening: quantities are positive quantities, whatever their JSON type ---
    ("quantity: negative integer dataset size", lambda w: _ds(w, spec__storage__size=-100),
     "create", ["spec.storage.size", "must be a positive quantity"]),
    ("quantity: zero dataset size", lambda w: _ds(w, spec__storage__size="0Gi"),
     "create", ["spec.storage.size", "must be a positive quantity"]),
    ("quantity: negative integer tool cpu", lambda w: _tool(w, spec__defaultResources__cpu=-2),
     "create", ["spec.defaultResources.cpu", "must be a positive quantity"]),
    ("quantity: zero workspace memory", lambda w: _ws(w, spec__resources__memory=0),
     "create", ["spec.resources.memory", "must be a positive quantity"]),
    ("quantity: zero workspace cpu string", lambda w: _ws(w, spec__resources__cpu="0m"),
     "create", ["spec.resources.cpu", "must be a positive quantity"]),
    ("quantity: negative integer ceiling", lambda w: _permit(w, spec__ceilings__storage=-1),
     "create", ["spec.ceilings.storage", "must be a non-negative quantity"]),
    ("quantity: zero export file size", lambda w: _permit(w, spec__exportPolicy__maxFileSize=0),
     "create", ["spec.exportPolicy.maxFileSize", "must be a positive quantity"]),
    # --- hardening: names fit every child derived from them ---
    ("name: permit 'system' is the operator's namespace", lambda w: _permit(w, metadata__name="system"),
     "create", ["metadata.name", "'system' is reserved"]),
    ("name: permit with a dot", lambda w: _permit(w, metadata__name=f"a.{w.suffix}"),
     "create", ["metadata.name", "DNS-1123 label"]),
    ("name: workspace with a leading digit", lambda w: _ws(w, metadata__name=f"1w{w.suffix}"),
     "create", ["metadata.name", "DNS-1035 label"]),
    ("name: workspace with a dot", lambda w: _ws(w, metadata__name=f"w.{w.suffix}"),
     "create", ["metadata.name", "DNS-1035 label"]),
    ("name: dataset with a dot", lambda w: edit(w.manifests["lung-ct"], metadata__name=f"d.{w.suffix}"),
     "create", ["metadata.name", "DNS-1123 label"]),
    ("name: tool with a dot", lambda w: edit(w.manifests["tool"], metadata__name=f"t.{w.suffix}"),
     "create", ["metadata.name", "DNS-1123 label"]),
    ("webhook: starting more than the ceiling", lambda w: edit(w.manifests["workspace"], spec__resources__gpus__count=2),
     "update", ["spec.resources.gpus.count: 2 x NVIDIA-L40S exceeds", "left 1"]),
]


@pytest.mark.parametrize("build, how, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_manifest_is_refused(world, build, how, expected):
    manifest = build(world)
    gateway = how.endswith("-gateway")
    if how.startswith("create"):
        result = world.create(manifest, dry_run=True, as_gateway=gateway)
    else:
        result = world.update(manifest, dry_run=True, as_gateway=gateway)
    assert result.returncode != 0, f"accepted, but should have been refused:\n{yaml.safe_dump(manifest)}"
    message = " ".join(result.stderr.split())
    for text in expected:
        assert text in message, f"{text!r} not in:\n{result.stderr}"


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert sum(c[0].startswith("webhook") for c in CASES) >= 10


def test_unchanged_and_valid_updates_pass(world):
    # A spec-preserving update (labels) skips the webhook; a valid change passes it.
    labelled = edit(world.manifests["workspace"], metadata__labels={"team": "segmentation"})
    assert world.update(labelled, dry_run=True).returncode == 0
    smaller = edit(world.manifests["workspace"], spec__resources__cpu="6")
    result = world.update(smaller, dry_run=True)
    assert result.returncode == 0, result.stderr
    stopped = edit(world.manifests["workspace"], spec__running=False)
    assert world.update(stopped, dry_run=True).returncode == 0
