"""Unit tests of the pure Workspace builders: children, security invariants, gates, status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spe_api import ConditionType, DataPermit, Dataset, Reason, Tool, Workspace, WorkspacePhase, get_condition
from spe_operator.children import LABEL_COMPONENT, LABEL_OWNER_UID, LABEL_PERMIT, LABEL_WORKSPACE
from spe_operator.settings import SpeSettings
from spe_operator.workspaces import checks, datasets, desired, idle, names, service, statefulset, status, volumes

from . import factories as f

pytestmark = pytest.mark.workspace

NS = "spe-p1"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = SpeSettings(encrypted_storage_classes=["spe-encrypted"], default_storage_class="spe-encrypted")
OWNER = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "w1", "uid": "uid-w1"}}
PERMIT_BODY = {"apiVersion": "spe.ehds.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": "p1", "uid": "uid-p1"}}
SOURCE_PV = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-prostate"}, "spec": {
    "capacity": {"storage": "50Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "spe-encrypted",
    "csi": {"driver": "rbd.csi.ceph.com", "volumeHandle": "vol-123", "fsType": "ext4"},
    "claimRef": {"namespace": "spe-system", "name": "dataset-prostate-mr"},
    "persistentVolumeReclaimPolicy": "Retain"}}


def ws_model(**kw) -> Workspace:
    body = f.workspace("w1", NS, "p1", **kw)
    body["metadata"].update(uid="uid-w1", generation=3)
    return Workspace.from_manifest(body)


def tool_model(**kw) -> Tool:
    return Tool.from_manifest(f.tool(**kw))


def permit_model(**kw) -> DataPermit:
    body = f.permit("p1", datasets=["prostate-mr", "lung-ct"], **kw)
    body["metadata"]["uid"] = "uid-p1"
    return DataPermit.from_manifest(body)


def ready_dataset(name="prostate-mr") -> Dataset:
    body = f.dataset(name)
    body["status"] = {"phase": "Ready", "volumeName": "pv-prostate"}
    return Dataset.from_manifest(body)


def render(ws=None, tool=None, mounts=(), replicas=1, settings=SETTINGS):
    ws = ws or ws_model()
    return statefulset.build_statefulset(ws, tool or tool_model(), mounts, settings, replicas=replicas)


def pod_spec(**kw):
    return render(**kw)["spec"]["template"]["spec"]


def container(**kw):
    return pod_spec(**kw)["containers"][0]


MOUNT = datasets.DatasetMount("prostate-mr", SOURCE_PV)


# --- security invariants, one row per field --------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    (("automountServiceAccountToken",), False),
    (("enableServiceLinks",), False),
    (("hostNetwork",), False),
    (("hostPID",), False),
    (("hostIPC",), False),
    (("securityContext", "runAsNonRoot"), True),
    (("securityContext", "runAsUser"), 1000),
    (("securityContext", "runAsGroup"), 100),
    (("securityContext", "fsGroup"), 100),
    (("securityContext", "seccompProfile", "type"), "RuntimeDefault"),
])
def test_pod_security_field(path, expected):
    value = pod_spec()
    for part in path:
        value = value[part]
    assert value == expected


@pytest.mark.parametrize("path, expected", [
    (("securityContext", "runAsNonRoot"), True),
    (("securityContext", "runAsUser"), 1000),
    (("securityContext", "runAsGroup"), 100),
    (("securityContext", "privileged"), False),
    (("securityContext", "allowPrivilegeEscalation"), False),
    (("securityContext", "readOnlyRootFilesystem"), True),
    (("securityContext", "capabilities"), {"drop": ["ALL"]}),
    (("securityContext", "seccompProfile", "type"), "RuntimeDefault"),
    (("image",), f.GPU_IMAGE),
    (("imagePullPolicy",), "IfNotPresent"),
])
def test_container_security_field(path, expected):
    value = container()
    for part in path:
        value = value[part]
    assert value == expected


def test_no_service_account_token_or_host_paths_anywhere():
    spec = pod_spec(mounts=(MOUNT,))
    kinds = {key for v in spec["volumes"] for key in v if key != "name"}
    assert kinds <= {"persistentVolumeClaim", "emptyDir", "secret", "downwardAPI"}
    assert "serviceAccountName" not in spec or spec["serviceAccountName"] == "default"


@pytest.mark.parametrize("mount_path, volume, read_only", [
    ("/home/jovyan", "home", False),
    ("/home/jovyan/outputs", "outputs", False),
    ("/tmp", "tmp", False),
    ("/dev/shm", "dshm", False),
    ("/run/secrets/spe-hub", "hub-credentials", True),
    ("/data/prostate-mr", "ds-prostate-mr", True),
])
def test_writable_paths_are_exactly_home_outputs_tmp(mount_path, volume, read_only):
    spec = pod_spec(mounts=(MOUNT,))
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts[mount_path]["name"] == volume
    assert bool(mounts[mount_path].get("readOnly")) is read_only


def test_dataset_read_only_at_volume_and_mount():
    spec = pod_spec(mounts=(MOUNT,))
    vol = next(v for v in spec["volumes"] if v["name"] == "ds-prostate-mr")
    assert vol["persistentVolumeClaim"] == {"claimName": "ds.prostate-mr.r0", "readOnly": True}


def test_tmp_and_shm_are_size_limited():
    vols = {v["name"]: v for v in pod_spec()["volumes"]}
    assert vols["tmp"]["emptyDir"] == {"sizeLimit": SETTINGS.workspace_tmp_size}
    assert vols["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": SETTINGS.workspace_shm_size}
    assert vols["home"]["persistentVolumeClaim"]["claimName"] == "w1-home"
    assert vols["outputs"]["persistentVolumeClaim"]["claimName"] == "w1-outputs"


@pytest.mark.parametrize("gpus, limits, selector, tolerations", [
    (None, {"cpu": "1", "memory": "2Gi"}, {"kubernetes.io/os": "linux"}, None),
    ({"count": 1, "model": "NVIDIA-L40S"}, {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"},
     {"kubernetes.io/os": "linux", "nvidia.com/gpu.product": "NVIDIA-L40S"},
     [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
    ({"count": 3, "model": "NVIDIA-A30"}, {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "3"},
     {"kubernetes.io/os": "linux", "nvidia.com/gpu.product": "NVIDIA-A30"},
     [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
])
def test_resources_gpus_and_placement(gpus, limits, selector, tolerations):
    spec = pod_spec(ws=ws_model(gpus=gpus))
    res = spec["containers"][0]["resources"]
    assert res["limits"] == limits and res["requests"] == limits  # requests == limits: Guaranteed QoS
    assert spec["nodeSelector"] == selector
    assert spec.get("tolerations") == tolerations


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_on_the_named_port(probe):
    c = container()
    assert c[probe]["tcpSocket"]["port"] == "http"
    assert c["ports"] == [{"name": "http", "containerPort": SETTINGS.notebook_port, "protocol": "TCP"}]


@pytest.mark.parametrize("replicas", [0, 1])
def test_replicas_and_selector(replicas):
    sts = render(replicas=replicas)
    assert sts["spec"]["replicas"] == replicas
    sel = sts["spec"]["selector"]["matchLabels"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sel.items() <= labels.items()
    assert labels[LABEL_COMPONENT] == "notebook" and labels[LABEL_PERMIT] == "p1" and labels[LABEL_WORKSPACE] == "w1"


def test_more_than_one_replica_is_refused():
    with pytest.raises(ValueError):
        render(replicas=2)


# --- service, volumes, dataset claims ----------------------------------------------------------

def test_service_is_headless_on_the_notebook_port():
    svc = service.build_service(ws_model(), SETTINGS)
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == names.selector_labels("w1")
    assert svc["spec"]["ports"][0]["port"] == SETTINGS.notebook_port
    assert names.server_url("w1", NS, 8888) == "http://w1.spe-p1.svc:8888"


@pytest.mark.parametrize("encrypted, default, allow, requested, ok, klass, reason", [
    (["enc"], None, False, None, True, "enc", Reason.VOLUMES_READY),
    (["enc", "enc2"], "enc2", False, None, True, "enc2", Reason.VOLUMES_READY),
    (["enc"], None, False, "enc", True, "enc", Reason.VOLUMES_READY),
    ([], None, False, None, False, None, Reason.NO_ENCRYPTED_STORAGE_CLASS),
    (["enc"], None, False, "standard", False, None, Reason.STORAGE_CLASS_NOT_ENCRYPTED),
    (["enc"], "standard", False, None, False, None, Reason.STORAGE_CLASS_NOT_ENCRYPTED),
    ([], None, True, None, True, None, Reason.UNENCRYPTED_STORAGE_ALLOWED),
    (["enc"], None, True, "standard", True, "standard", Reason.UNENCRYPTED_STORAGE_ALLOWED),
])
def test_storage_class_choice(encrypted, default, allow, requested, ok, klass, reason):
    settings = SpeSettings(encrypted_storage_classes=encrypted, default_storage_class=default,
                           allow_unencrypted_storage=allow)
    claims, choice = volumes.build_volume_claims(ws_model(storage_class=requested), settings)
    assert (choice.ok, choice.storage_class, choice.reason) == (ok, klass, reason)
    assert len(claims) == (2 if ok else 0)
    for claim in claims:
        assert claim["spec"].get("storageClassName") == klass
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_dataset_volume_is_read_only_retained_and_pre_bound():
    pv = datasets.build_dataset_volume(MOUNT, NS)
    pvc = datasets.build_dataset_claim(MOUNT, NS)
    assert pv["metadata"]["name"] == "ds.spe-p1.prostate-mr.r0"
    assert pv["spec"]["csi"]["readOnly"] is True and pv["spec"]["csi"]["volumeHandle"] == "vol-123"
    assert pv["spec"]["accessModes"] == ["ReadOnlyMany"] == pvc["spec"]["accessModes"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["storageClassName"] == "" == pvc["spec"]["storageClassName"]
    assert pv["spec"]["claimRef"] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": NS,
                                      "name": "ds.prostate-mr.r0"}
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert "claimRef" not in SOURCE_PV["spec"] or SOURCE_PV["spec"]["claimRef"]["name"] == "dataset-prostate-mr"


def test_desired_children_are_adopted():
    ws = ws_model(datasets=["prostate-mr"])
    claims, _ = volumes.build_volume_claims(ws, SETTINGS)
    d = desired.desired_children(OWNER, ws, tool=tool_model(), mounts=(MOUNT,), claims=claims,
                                 permit_body=PERMIT_BODY, settings=SETTINGS, replicas=1)
    kinds = [m["kind"] for m in d.in_order()]
    assert kinds == ["PersistentVolumeClaim"] * 2 + ["PersistentVolume", "PersistentVolumeClaim", "StatefulSet", "Service"]
    for m in [*d.claims, d.statefulset, d.service]:
        assert m["metadata"]["ownerReferences"][0]["uid"] == "uid-w1"
        assert m["metadata"]["labels"][LABEL_OWNER_UID] == "uid-w1"
        assert m["metadata"]["labels"][LABEL_WORKSPACE] == "w1"
    for m in d.dataset_volumes:  # shared by the namespace's workspaces: owned by the permit
        assert m["metadata"]["ownerReferences"][0]["uid"] == "uid-p1"


# --- gates and status --------------------------------------------------------------------------

def gates(ws=None, *, permit=None, tool=None, datasets_=None, sources=None, settings=SETTINGS, now=NOW):
    ws = ws or ws_model()
    verdict = datasets.evaluate_datasets(ws.spec.datasets, datasets_ or {}, sources or {})
    _, choice = volumes.build_volume_claims(ws, settings)
    return checks.evaluate(ws, permit=permit, expected_namespace=NS, tool=tool, available_tools=["jupyterlab"],
                           datasets=verdict, storage=choice, others=[], now=now)


@pytest.mark.parametrize("case, kw, failing, reason", [
    ("ok", {}, None, None),
    ("no permit", {"permit": None}, ConditionType.PERMIT_ACTIVE, Reason.PERMIT_NOT_FOUND),
    ("expired", {"permit": "expired"}, ConditionType.PERMIT_ACTIVE, Reason.EXPIRED),
    ("not yet valid", {"permit": "future"}, ConditionType.PERMIT_ACTIVE, Reason.NOT_YET_VALID),
    ("no tool", {"tool": None}, ConditionType.TOOL_APPROVED, Reason.TOOL_NOT_FOUND),
    ("unapproved tool", {"tool": "unapproved"}, ConditionType.TOOL_APPROVED, Reason.TOOL_NOT_APPROVED),
    ("revoked tool", {"tool": "revoked"}, ConditionType.TOOL_APPROVED, Reason.TOOL_REVOKED),
    ("missing dataset", {"ds": "missing"}, ConditionType.DATASETS_READY, Reason.DATASET_NOT_FOUND),
    ("dataset not ready", {"ds": "ingesting"}, ConditionType.DATASETS_READY, Reason.DATASET_NOT_READY),
    ("dataset without volume", {"ds": "novolume"}, ConditionType.DATASETS_READY, Reason.DATASET_VOLUME_MISSING),
    ("dataset not in permit", {"ds": "other"}, ConditionType.DATASETS_READY, Reason.DATASET_NOT_IN_PERMIT),
    ("no encrypted class", {"settings": SpeSettings()}, ConditionType.VOLUMES_READY, Reason.NO_ENCRYPTED_STORAGE_CLASS),
])
def test_gates(case, kw, failing, reason):
    permit = {"expired": permit_model(not_after=NOW - timedelta(seconds=1)),
              "future": permit_model(not_before=NOW + timedelta(hours=1), not_after=NOW + timedelta(days=1))}.get(
        kw.get("permit"), permit_model(not_after=NOW + timedelta(days=1)))
    if "permit" in kw and kw["permit"] is None:
        permit = None
    tool = {"unapproved": tool_model(approved=False), "revoked": tool_model(revoked=True)}.get(kw.get("tool"), tool_model())
    if "tool" in kw and kw["tool"] is None:
        tool = None
    ds = kw.get("ds")
    wanted = {"missing": "lung-ct", "ingesting": "lung-ct", "novolume": "prostate-mr", "other": "brain"}.get(ds, "prostate-mr")
    ws = ws_model(datasets=[wanted])
    if ds == "ingesting":
        body = f.dataset("lung-ct")
        body["status"] = {"phase": "Ingesting"}
        dsets, sources = {"lung-ct": Dataset.from_manifest(body)}, {}
    elif ds == "missing":
        dsets, sources = {"lung-ct": None}, {}
    elif ds == "novolume":
        dsets, sources = {"prostate-mr": ready_dataset()}, {"prostate-mr": None}
    else:
        dsets, sources = {wanted: ready_dataset(wanted)}, {wanted: SOURCE_PV}
    g = gates(ws, permit=permit, tool=tool, datasets_=dsets, sources=sources, settings=kw.get("settings", SETTINGS))
    if failing is None:
        assert g.ok, g.first_failure
    else:
        assert not g.ok
        assert (g.first_failure.type, g.first_failure.reason) == (failing, reason), g.first_failure
        assert g.first_failure.message


def ok_gates(ws):
    return gates(ws, permit=permit_model(not_after=NOW + timedelta(days=1)), tool=tool_model())


POD_READY = status.PodView("w1-0", node="spe-gpu-l40s", scheduled=True, ready=True)
POD_STARTING = status.PodView("w1-0", node="spe-gpu-l40s", scheduled=True, ready=False)
POD_UNSCHEDULABLE = status.PodView("w1-0", scheduled=False, scheduled_reason="Unschedulable",
                                   scheduled_message="0/4 nodes are available: 1 Insufficient nvidia.com/gpu.")
POD_UNBOUND = status.PodView("w1-0", scheduled=False, scheduled_reason="Unschedulable",
                             scheduled_message="0/4 nodes are available: pod has unbound immediate "
                                               "PersistentVolumeClaims. not found")


@pytest.mark.parametrize("running, pod, phase, ready_reason, scheduled", [
    (False, None, WorkspacePhase.STOPPED, Reason.STOPPED, "False"),
    (False, POD_READY, WorkspacePhase.STOPPED, Reason.STOPPING, "False"),
    (True, None, WorkspacePhase.STARTING, Reason.STARTING, "Unknown"),
    (True, POD_UNSCHEDULABLE, WorkspacePhase.PENDING, "Unschedulable", "False"),
    (True, POD_UNBOUND, WorkspacePhase.STARTING, Reason.STARTING, "False"),
    (True, POD_STARTING, WorkspacePhase.STARTING, Reason.STARTING, "True"),
    (True, POD_READY, WorkspacePhase.RUNNING, Reason.SERVER_READY, "True"),
])
def test_status_phases(running, pod, phase, ready_reason, scheduled):
    ws = ws_model(running=running, gpus={"count": 1, "model": "NVIDIA-L40S"})
    url = names.server_url("w1", NS, 8888)
    st = status.build_status(status.StatusInputs(ws=ws, gates=ok_gates(ws), pod=pod, url=url, now=NOW))
    assert st.phase == phase
    ready = get_condition(st.conditions, ConditionType.READY)
    assert ready.reason == ready_reason and ready.observed_generation == 3
    assert get_condition(st.conditions, ConditionType.SCHEDULED).status.value == scheduled
    assert st.observed_generation == 3
    if phase == WorkspacePhase.RUNNING:
        assert st.url == url and st.node == "spe-gpu-l40s" and st.gpus == 1 and st.started_at == NOW
    else:
        assert st.url is None
    if pod is POD_UNSCHEDULABLE:
        assert "Insufficient nvidia.com/gpu" in get_condition(st.conditions, ConditionType.SCHEDULED).message


def test_blocked_names_the_failure():
    ws = ws_model(running=True)
    g = gates(ws, permit=None, tool=tool_model())
    st = status.build_status(status.StatusInputs(ws=ws, gates=g, pod=None, url="u", now=NOW))
    assert st.phase == WorkspacePhase.BLOCKED
    assert "'p1' does not exist" in get_condition(st.conditions, ConditionType.READY).message


def test_transition_time_kept_when_status_unchanged():
    ws = ws_model(running=True)
    first = status.build_status(status.StatusInputs(ws=ws, gates=ok_gates(ws), pod=POD_READY, url="u", now=NOW))
    ws2 = ws.model_copy(update={"status": first})
    later = NOW + timedelta(minutes=5)
    second = status.build_status(status.StatusInputs(ws=ws2, gates=ok_gates(ws2), pod=POD_READY, url="u", now=later))
    assert not status.status_changed(first, second)
    assert get_condition(second.conditions, ConditionType.READY).last_transition_time == NOW
    assert second.started_at == NOW


def test_status_patch_clears_absent_fields():
    ws = ws_model()
    st = status.build_status(status.StatusInputs(ws=ws, gates=ok_gates(ws), pod=None, url="u", now=NOW))
    patch = status.status_patch(st)["status"]
    assert patch["url"] is None and patch["node"] is None and patch["phase"] == "Stopped"


# --- idle ------------------------------------------------------------------------------------

@pytest.mark.parametrize("annotation, started, minutes, now_offset, idle_", [
    (None, NOW, 60, 59, False),
    (None, NOW, 60, 60, True),
    ((NOW + timedelta(minutes=30)).isoformat(), NOW, 60, 61, False),
    ((NOW + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"), NOW, 60, 90, True),
    ("not a time", NOW, 60, 61, True),
    (None, NOW, 0, 10_000, False),  # 0: never
    (None, None, 60, 10_000, False),  # never started
])
def test_idle(annotation, started, minutes, now_offset, idle_):
    ws = ws_model(running=True, idle_minutes=minutes)
    if annotation is not None:
        ws.metadata.annotations[names.ANNOTATION_LAST_ACTIVITY] = annotation
    assert idle.is_idle(ws, started, NOW + timedelta(minutes=now_offset)) is idle_


def test_idle_only_while_running():
    ws = ws_model(running=False, idle_minutes=1)
    assert idle.idle_deadline(ws, NOW) is None


def test_over_the_ceiling_blocks_the_newest_only():
    permit = permit_model(not_after=NOW + timedelta(days=1), gpus=[{"model": "NVIDIA-L40S", "count": 1}])

    def ws_at(name, minutes):
        body = f.workspace(name, NS, "p1", running=True, gpus=L40S_ONE)
        body["metadata"]["creationTimestamp"] = (NOW + timedelta(minutes=minutes)).isoformat()
        return Workspace.from_manifest(body)
    old, new = ws_at("old", 0), ws_at("new", 1)
    assert checks.ceilings_gate(old, permit, [old, new]).ok
    gate = checks.ceilings_gate(new, permit, [old, new])
    assert not gate.ok and gate.reason == Reason.CEILING_EXCEEDED


L40S_ONE = {"count": 1, "model": "NVIDIA-L40S"}


@pytest.mark.parametrize("stop_reason, pod, reason", [
    ("IdleTimeout", POD_READY, Reason.IDLE_TIMEOUT),
    ("IdleTimeout", None, Reason.IDLE_TIMEOUT),
    (None, POD_READY, Reason.STOPPING),
])
def test_why_a_server_stopped_is_kept(stop_reason, pod, reason):
    ws = ws_model(running=False)
    st = status.build_status(status.StatusInputs(ws=ws, gates=ok_gates(ws), pod=pod, url="u", now=NOW,
                                                 stop_reason=stop_reason))
    assert st.phase == WorkspacePhase.STOPPED
    assert get_condition(st.conditions, ConditionType.READY).reason == reason
