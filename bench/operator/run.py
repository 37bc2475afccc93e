"""Benchmark the Workspace reconciler against the bare-Kubernetes baseline, in one run on one
control plane; and the permit reconciler at scale.

    .venv/bin/python bench/operator/run.py [--sizes 100,1000] [--permits 100] [--rate 10]
                                           [--arms spe,baseline] [--order interleaved] [--keep]
    .venv/bin/python bench/operator/run.py --permit-scale 1000

It starts a private local control plane (``spe-dev`` with home ``.cache/spe-dev-bench`` and
shifted ports, so the developers' and the tests' clusters are left alone), installs the CRDs,
adds bench nodes (kwok, 250 pods each), runs the loopback volume provisioner of the test suite
(it binds the ``spe-encrypted`` claims; no CSI driver can run here), and the operator as a
subprocess, ``spe-operator run`` exactly as deployed (admission webhook included unless
``--no-webhook``), under ``instrumented.py``, which counts the operator's API requests.

Two arms per size, on the same control plane, in the same permit namespaces (same quota,
limit range, admission):

- **spe**: a running Workspace is created through the API; timed from the create request to
  the Workspace's Ready condition (the operator applies the claims, StatefulSet and Service,
  waits for the pod, and writes status).
- **baseline**: what a spawner that creates the pods itself would do: the *same* manifests (the
  operator's own pure builders: home and outputs claims, StatefulSet, Service; owner references
  and SPE labels removed) applied directly; timed from the first apply to the pod's Ready.

``--order interleaved`` (default) creates workspace i and baseline set i back to back (which
goes first alternates), so the machine's load (shared with other work) falls on both arms
alike; ``sequential`` runs the whole spe arm, deletes, then the whole baseline arm.
The report gives p50/p99 of each arm and their ratio, the operator's CPU seconds, peak RSS and
API requests per workspace (by verb and resource), the API server's request count
(``apiserver_request_total``), and the machine's load average and CPU use during the run.

``--permit-scale N`` instead creates N DataPermits at once and times each to phase Active with
Ready=True, and counts the operator's API requests per permit (at all-Active and after the
follow-up reconciles settle).

What bounds the figures on this machine: two shared cores run etcd, the API server, the
controller-manager, the scheduler, kwok, the provisioner, the operator (with its webhook and
the permit reconciler) and this script; other sessions' work shares the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from spe_api import Tool, Workspace  # noqa: E402
from spe_dev.nodes import FakeNode, node_manifest  # noqa: E402
from spe_kube import ApiError, KubeClient, kind_for, load_kubeconfig  # noqa: E402
from spe_operator.children import LABEL_MANAGED_BY, LABEL_OWNER_UID, LABEL_WORKSPACE  # noqa: E402
from spe_operator.settings import SpeSettings  # noqa: E402
from spe_operator.workspaces.desired import desired_children  # noqa: E402
from spe_operator.workspaces.volumes import build_volume_claims  # noqa: E402
from tests.fixtures.storage import LoopbackProvisioner  # noqa: E402

BENCH_HOME = REPO / ".cache" / "spe-dev-bench"
PORT_OFFSET = 200
VENV_BIN = Path(sys.executable).parent
API = "spe.ehds.io/v1alpha1"
WS = kind_for(API, "Workspace")
PERMIT = kind_for(API, "DataPermit")
POD = kind_for("v1", "Pod")
PVC = kind_for("v1", "PersistentVolumeClaim")
STS = kind_for("apps/v1", "StatefulSet")
SVC = kind_for("v1", "Service")
NAMESPACE = kind_for("v1", "Namespace")
IMAGE = "registry.invalid/spe/jupyterlab:4.2@sha256:" + "c" * 64
BENCH_LABEL = "spe.ehds.io/bench"
BASELINE_LABEL = "spe.ehds.io/bench-baseline"  # the baseline's stand-in for the workspace label
BASELINE_MANAGER = "spe-bench-baseline"
STORAGE_CLASS = "spe-encrypted"
PODS_PER_NODE = 250


# --- set-up -----------------------------------------------------------------------------------

def _suffix() -> str:
    """Distinguishes the files of a run with its own ``--home`` (two benchmarks at once)."""
    return "" if BENCH_HOME.name == "spe-dev-bench" else "-" + BENCH_HOME.name


def spe_dev(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPE_DEV_HOME=str(BENCH_HOME), SPE_DEV_PORT_OFFSET=str(PORT_OFFSET),
               SPE_DEV_READY_TIMEOUT="300")
    proc = subprocess.run([str(VENV_BIN / "spe-dev"), *args], env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise SystemExit(f"spe-dev {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def bench_nodes(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        m = node_manifest(FakeNode(f"spe-bench-{i}", 100 + i, cpu="64", memory="256Gi",
                                   extra_labels={BENCH_LABEL: "true"}))
        m["status"]["capacity"]["pods"] = m["status"]["allocatable"]["pods"] = str(PODS_PER_NODE)
        out.append(m)
    return out


def tool() -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tool", "metadata": {"name": "bench-jupyterlab"}, "spec": {
        "displayName": "JupyterLab (bench)", "image": IMAGE, "kind": "jupyter", "gpuCapable": False,
        "approval": {"approvedBy": "bench@example.org", "approvedAt": "2026-01-01T00:00:00Z",
                     "scan": {"scanner": "trivy 0.58", "scannedAt": "2026-01-01T00:00:00Z"}}}}


def dataset() -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Dataset", "metadata": {"name": "bench-data"}, "spec": {
        "source": {"claimName": "src-bench", "path": "/"},
        "pseudonymisation": {"keySecret": {"name": "pseudonym-key"}, "site": "bench"},
        "storage": {"size": "1Gi"}, "signingKeySecret": {"name": "signing-key"}}}


def permit(name: str, max_workspaces: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "DataPermit", "metadata": {"name": name}, "spec": {
        "permitId": f"HDAB-{name.upper()}", "purpose": "Benchmark of the workspace reconciler.",
        "members": [{"subject": "alice@example.org"}], "datasets": ["bench-data"],
        "notAfter": "2099-01-01T00:00:00Z",
        "ceilings": {"cpu": "64", "memory": "256Gi", "storage": "10Ti", "maxWorkspaces": max(10, max_workspaces)}}}


def permit_name(i: int) -> str:
    return f"bench-{i:03d}"


def workspace(i: int, permits: int, prefix: str = "w") -> dict[str, Any]:
    p = permit_name(i % permits)
    return {"apiVersion": API, "kind": "Workspace", "metadata": {"name": f"{prefix}{i:04d}", "namespace": f"spe-{p}"},
            "spec": {"permit": p, "members": ["alice@example.org"], "tool": "bench-jupyterlab",
                     "resources": {"cpu": "10m", "memory": "64Mi"}, "storage": {"size": "1Gi"},
                     "idleTimeoutMinutes": 0, "running": True}}


def operator_settings() -> SpeSettings:
    return SpeSettings(encrypted_storage_classes=[STORAGE_CLASS], default_storage_class=STORAGE_CLASS)


def _relabel(node: Any) -> Any:
    """The SPE's labels made the baseline's: the workspace label renamed, managed-by changed,
    the owner-uid label dropped (so neither the operator's watches nor its selectors see them)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == LABEL_WORKSPACE:
                out[BASELINE_LABEL] = v
            elif k == LABEL_OWNER_UID:
                continue
            elif k == LABEL_MANAGED_BY:
                out[k] = BASELINE_MANAGER
            elif k == "ownerReferences":
                continue
            else:
                out[k] = _relabel(v)
        return out
    if isinstance(node, list):
        return [_relabel(v) for v in node]
    return node


def baseline_manifests(i: int, permits: int, settings: SpeSettings) -> list[dict[str, Any]]:
    """What the operator would apply for workspace i, as a spawner would apply it itself:
    the same claims, StatefulSet and Service from the operator's own builders, unowned."""
    body = workspace(i, permits, prefix="b")
    body["metadata"]["uid"] = f"00000000-0000-4000-8000-{i:012d}"
    ws = Workspace.from_manifest(body)
    claims, _ = build_volume_claims(ws, settings)
    desired = desired_children(body, ws, tool=Tool.from_manifest(tool()), mounts=(), claims=claims,
                               permit_body=None, settings=settings, replicas=1)
    return [_relabel(copy.deepcopy(m)) for m in desired.in_order()]


# --- measuring --------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class LoadMonitor:
    """Samples the operator's RSS, the machine's load average and CPU use while a phase runs."""

    def __init__(self, pid: int, period: float = 0.25):
        self.pid, self.period = pid, period
        self.rss: list[int] = []
        self.loadavg: list[float] = []
        self._cpu0 = machine_cpu()
        self._cpu_op0 = cpu_seconds(pid)
        self._task: asyncio.Task | None = None
        self.started = time.monotonic()

    async def _run(self) -> None:
        n = 0
        while True:
            self.rss.append(rss_bytes(self.pid))
            if n % 4 == 0:
                self.loadavg.append(os.getloadavg()[0])
            n += 1
            await asyncio.sleep(self.period)

    def start(self) -> "LoadMonitor":
        self._cpu0, self._cpu_op0, self.started = machine_cpu(), cpu_seconds(self.pid), time.monotonic()
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        busy1, total1 = machine_cpu()
        busy = (busy1 - self._cpu0[0]) / max(1, total1 - self._cpu0[1])
        return {
            "wall_s": round(time.monotonic() - self.started, 1),
            "operator_cpu_s": round(cpu_seconds(self.pid) - self._cpu_op0, 1),
            "operator_rss_peak_mib": round(max(self.rss, default=0) / 2**20, 1),
            "operator_rss_end_mib": round(rss_bytes(self.pid) / 2**20, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "cpu_busy_pct": round(100 * busy, 1),
                "loadavg1_min": round(min(self.loadavg, default=0), 2),
                "loadavg1_mean": round(statistics.fmean(self.loadavg), 2) if self.loadavg else None,
                "loadavg1_max": round(max(self.loadavg, default=0), 2),
            },
        }


class OperatorCounts:
    """The operator's API requests (counted in its process by ``instrumented.py``)."""

    def __init__(self, pid: int, path: Path):
        self.pid, self.path = pid, path

    async def read(self) -> Counter:
        before = self.path.stat().st_mtime_ns if self.path.exists() else 0
        os.kill(self.pid, signal.SIGUSR1)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if self.path.exists() and self.path.stat().st_mtime_ns != before:
                break
        try:
            return Counter(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return Counter()

    async def census(self) -> dict[str, Any] | None:
        """The operator's live objects by type (instrumented.py walks them on SIGUSR2)."""
        path = self.path.with_name(self.path.name + ".census.json")
        before = path.stat().st_mtime_ns if path.exists() else 0
        os.kill(self.pid, signal.SIGUSR2)
        for _ in range(1200):
            await asyncio.sleep(0.05)
            if path.exists() and path.stat().st_mtime_ns != before:
                return json.loads(path.read_text())
        return None


def count_summary(before: Counter, after: Counter, per: int) -> dict[str, Any]:
    delta = after - before
    total = sum(delta.values())
    no_watch = {k: v for k, v in delta.items() if not k.startswith("WATCH ")}
    return {
        "total": total,
        "per_item": round(total / per, 2) if per else None,
        "by_request": dict(sorted(no_watch.items(), key=lambda kv: -kv[1])),
        "per_item_by_request": {k: round(v / per, 3) for k, v in sorted(no_watch.items(), key=lambda kv: -kv[1])}
        if per else {},
        "watch_requests": sum(v for k, v in delta.items() if k.startswith("WATCH ")),
    }


_METRIC = re.compile(r'^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$')


async def apiserver_requests(kube: KubeClient) -> Counter:
    """``apiserver_request_total`` summed by verb (all clients)."""
    text = await kube.request("GET", "/metrics")
    out: Counter = Counter()
    for line in str(text).splitlines():
        m = _METRIC.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            out[labels.get("verb", "?")] += int(float(m.group(2)))
    return out


def _ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


class Recorder:
    """Watches Workspaces and the two arms' pods; records, per item, the first status write,
    Ready, the number of writes seen (resourceVersions) and the pod's Ready."""

    def __init__(self) -> None:
        self.created: dict[str, dict[tuple[str, str], float]] = {"spe": {}, "baseline": {}}
        self.ready: dict[str, dict[tuple[str, str], float]] = {"spe": {}, "baseline": {}}
        self.first_status: dict[tuple[str, str], float] = {}
        self.spe_pod_ready: dict[tuple[str, str], float] = {}
        self.versions: dict[tuple[str, str], set[str]] = {}
        self.versions_at_ready: dict[tuple[str, str], int] = {}
        self.sts_seen: dict[str, dict[tuple[str, str], float]] = {"spe": {}, "baseline": {}}  # StatefulSet created

    def see_workspace(self, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        st = obj.get("status") or {}
        now = time.monotonic()
        self.versions.setdefault(key, set()).add(md.get("resourceVersion", ""))
        if st.get("observedGeneration") is not None:
            self.first_status.setdefault(key, now)
        if _ready(obj) and key not in self.ready["spe"]:
            self.ready["spe"][key] = now
            self.versions_at_ready[key] = len(self.versions[key])

    def see_pod(self, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        labels = md.get("labels") or {}
        if not _ready(obj):
            return
        ns = md.get("namespace", "")
        if labels.get(LABEL_WORKSPACE):
            self.spe_pod_ready.setdefault((ns, labels[LABEL_WORKSPACE]), time.monotonic())
        elif labels.get(BASELINE_LABEL):
            self.ready["baseline"].setdefault((ns, labels[BASELINE_LABEL]), time.monotonic())

    def see_statefulset(self, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        labels = md.get("labels") or {}
        arm = "spe" if labels.get(LABEL_WORKSPACE) else "baseline" if labels.get(BASELINE_LABEL) else None
        if arm is not None:
            self.sts_seen[arm].setdefault((md.get("namespace", ""), md["name"]), time.monotonic())

    async def watch(self, kube: KubeClient, kind, selector: str, see) -> None:
        while True:
            try:
                rv = None
                cont = None
                while True:
                    page = await kube.request("GET", kind.path(), params={
                        "labelSelector": selector or None, "limit": 500, "continue": cont})
                    for item in page.get("items", []):
                        see(item)
                    rv = page["metadata"]["resourceVersion"] if rv is None else rv
                    cont = page["metadata"].get("continue")
                    if not cont:
                        break
                session = kube._ensure_session()  # noqa: SLF001 - the client has no watch verb
                query = f"&labelSelector={selector}" if selector else ""
                url = f"{kube.config.server}{kind.path()}?watch=1&resourceVersion={rv}&timeoutSeconds=600{query}"
                async with session.get(url, headers={"Accept": "application/json"}, timeout=None) as resp:
                    async for line in resp.content:
                        if line.strip():
                            event = json.loads(line)
                            if event.get("type") in ("ADDED", "MODIFIED"):
                                see(event["object"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep measuring
                print(f"  (watch restarts: {exc})", flush=True)
                await asyncio.sleep(0.2)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _stats(values: list[float]) -> dict[str, Any]:
    return {"p50_s": _r(percentile(values, 50)), "p90_s": _r(percentile(values, 90)),
            "p99_s": _r(percentile(values, 99)), "max_s": _r(max(values) if values else None),
            "mean_s": _r(statistics.fmean(values) if values else None)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


class Arms:
    """Creates the two arms' items (rate-limited, bounded concurrency per arm)."""

    def __init__(self, kube: KubeClient, rec: Recorder, permits: int, concurrency: int, shared: bool):
        self.kube, self.rec, self.permits = kube, rec, permits
        self.settings = operator_settings()
        if shared:
            # Interleaved: one FIFO semaphore, so the arms start their items in the schedule's
            # alternating order and the faster arm cannot run ahead of the slower one.
            one = asyncio.Semaphore(2 * concurrency)
            self.sem = {"spe": one, "baseline": one}
        else:
            self.sem = {"spe": asyncio.Semaphore(concurrency), "baseline": asyncio.Semaphore(concurrency)}
        self.errors: dict[str, list[str]] = {"spe": [], "baseline": []}
        self.request_s: dict[str, list[float]] = {"spe": [], "baseline": []}

    async def _with_retry(self, call) -> None:
        for attempt in range(5):
            try:
                await call()
                return
            except ApiError as exc:
                if exc.status in (500, 503, 504, 429) and attempt < 4:
                    await asyncio.sleep(0.5)
                    continue
                raise

    async def create(self, arm: str, i: int) -> None:
        if arm == "spe":
            body = workspace(i, self.permits)
            key = (body["metadata"]["namespace"], body["metadata"]["name"])

            async def call() -> None:
                await self.kube.create(body)
        else:
            manifests = baseline_manifests(i, self.permits, self.settings)
            key = (manifests[0]["metadata"]["namespace"], f"b{i:04d}")

            async def call() -> None:
                # Concurrently, as the operator does (the pod waits for its claims anyway).
                await asyncio.gather(*(self.kube.apply(m, field_manager=BASELINE_MANAGER) for m in manifests))
        async with self.sem[arm]:
            started = self.rec.created[arm][key] = time.monotonic()
            try:
                await self._with_retry(call)
                self.request_s[arm].append(time.monotonic() - started)
            except ApiError as exc:
                self.errors[arm].append(f"{key}: {exc.message[:200]}")
                self.rec.created[arm].pop(key, None)


async def run_size(kube: KubeClient, size: int, permits: int, args: argparse.Namespace, pid: int,
                   counts: OperatorCounts) -> dict[str, Any]:
    arms = [a for a in args.arms.split(",") if a]
    rec = Recorder()
    watchers = [asyncio.create_task(rec.watch(kube, WS, "", rec.see_workspace)),
                asyncio.create_task(rec.watch(kube, POD, LABEL_WORKSPACE, rec.see_pod)),
                asyncio.create_task(rec.watch(kube, POD, BASELINE_LABEL, rec.see_pod)),
                asyncio.create_task(rec.watch(kube, STS, "", rec.see_statefulset))]
    await asyncio.sleep(1.0)  # the watches are open before the first create
    creator = Arms(kube, rec, permits, args.concurrency, shared=args.order == "interleaved")
    api_before, ops_before = await apiserver_requests(kube), await counts.read()
    monitor = LoadMonitor(pid).start()
    start = time.monotonic()
    rate = args.rate

    async def drive(schedule: list[tuple[str, int]]) -> None:
        t0 = time.monotonic()
        tasks = []
        for n, (arm, i) in enumerate(schedule):
            tasks.append(asyncio.create_task(creator.create(arm, i)))
            if rate > 0:  # `rate` items per second per arm
                await asyncio.sleep(max(0.0, t0 + (n + 1) / (rate * len(arms) if args.order == "interleaved" else rate)
                                        - time.monotonic()))
        await asyncio.gather(*tasks)

    async def wait_ready(which: list[str]) -> None:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            done = sum(len(rec.ready[a]) for a in which)
            want = sum(len(rec.created[a]) for a in which)
            if done >= want:
                break
            await asyncio.sleep(0.5)
            print(f"  {' '.join(f'{a} {len(rec.ready[a])}/{len(rec.created[a])}' for a in which)} ready, "
                  f"operator RSS {rss_bytes(pid) / 2**20:.0f} MiB, load {os.getloadavg()[0]:.1f}", end="\r", flush=True)
        print()

    created_in: dict[str, float] = {}
    if args.order == "interleaved":
        schedule = []
        for i in range(size):
            pair = [(a, i) for a in arms]
            schedule.extend(pair if i % 2 == 0 else pair[::-1])
        await drive(schedule)
        for a in arms:
            created_in[a] = round(time.monotonic() - start, 2)
        await wait_ready(arms)
    else:
        for a in arms:
            t = time.monotonic()
            await drive([(a, i) for i in range(size)])
            created_in[a] = round(time.monotonic() - t, 2)
            await wait_ready([a])
            if a != arms[-1]:
                print(f"  deleting the {a} arm ...", flush=True)
                await delete_all(kube, permits)
    settle_until = time.monotonic() + 5
    while time.monotonic() < settle_until:
        await asyncio.sleep(0.25)
    load = await monitor.stop()
    api_after, ops_after = await apiserver_requests(kube), await counts.read()
    census = await counts.census() if args.census else None
    for w in watchers:
        w.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)

    result: dict[str, Any] = {"workspaces": size, "permits": permits, "order": args.order, "arms": {}}
    for a in arms:
        created, ready = rec.created[a], rec.ready[a]
        times = [ready[k] - created[k] for k in created if k in ready]
        entry = {"created": len(created), "ready": len(times), "create_errors": creator.errors[a][:5],
                 "create_error_count": len(creator.errors[a]), "created_in_s": created_in.get(a),
                 "all_ready_in_s": _r(max(ready[k] for k in created if k in ready) - start) if times else None,
                 "apply_to_ready": _stats(times),
                 "create_request": _stats(creator.request_s[a]),
                 # from the create to the StatefulSet's appearance (the spe arm: via the operator)
                 "apply_to_statefulset": _stats([rec.sts_seen[a][k] - created[k] for k in created
                                                 if k in rec.sts_seen[a]])}
        if a == "spe":
            first = [rec.first_status[k] - created[k] for k in created if k in rec.first_status]
            reaction = [ready[k] - rec.spe_pod_ready[k] for k in ready if k in rec.spe_pod_ready]
            pod = [rec.spe_pod_ready[k] - created[k] for k in created if k in rec.spe_pod_ready]
            writes = [rec.versions_at_ready[k] for k in rec.versions_at_ready]
            entry.update({"operator_first_status": _stats(first), "apply_to_pod_ready": _stats(pod),
                          "pod_ready_to_workspace_ready": _stats(reaction),
                          "workspace_versions_to_ready_mean": _r(statistics.fmean(writes)) if writes else None})
        result["arms"][a] = entry
    if "spe" in result["arms"] and "baseline" in result["arms"]:
        s, b = result["arms"]["spe"]["apply_to_ready"], result["arms"]["baseline"]["apply_to_ready"]
        result["ratio"] = {"p50": _ratio(s["p50_s"], b["p50_s"]), "p99": _ratio(s["p99_s"], b["p99_s"]),
                           "mean": _ratio(s["mean_s"], b["mean_s"])}
        result["target_p99_ratio_1_2_met"] = result["ratio"]["p99"] is not None and result["ratio"]["p99"] <= 1.2
    result.update(load)
    result["operator_requests"] = count_summary(ops_before, ops_after, len(rec.created.get("spe", {})) or size)
    if census is not None:
        result["operator_census"] = census
    api_delta = api_after - api_before
    result["apiserver_requests"] = {"total": sum(api_delta.values()), "by_verb": dict(api_delta)}
    return result


async def delete_all(kube: KubeClient, permits: int) -> None:
    selectors = {STS: BASELINE_LABEL, SVC: BASELINE_LABEL, PVC: BASELINE_LABEL}
    for i in range(permits):
        ns = f"spe-{permit_name(i)}"
        await kube.request("DELETE", WS.path(ns))
        for kind, selector in selectors.items():
            await kube.request("DELETE", kind.path(ns), params={"labelSelector": selector})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        left = (await kube.list(WS) + await kube.list(POD, label_selector=LABEL_WORKSPACE)
                + await kube.list(POD, label_selector=BASELINE_LABEL) + await kube.list(PVC))
        if not left:
            return
        await asyncio.sleep(2)
    print("  (cleanup incomplete after 600 s)")


async def wait_namespaces(kube: KubeClient, permits: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    wanted = {f"spe-{permit_name(i)}" for i in range(permits)}
    sa = kind_for("v1", "ServiceAccount")
    have: set[str] = set()
    while time.monotonic() < deadline:
        have = {n["metadata"]["name"] for n in await kube.list(NAMESPACE) if n["metadata"]["name"] in wanted
                and (n.get("status") or {}).get("phase") == "Active"}
        if have == wanted:
            accounts = {s["metadata"]["namespace"] for s in await kube.list(sa, field_selector="metadata.name=default")}
            if wanted <= accounts:
                return
        await asyncio.sleep(1)
    raise SystemExit(f"permit namespaces missing after {timeout}s: {sorted(wanted - have)[:5]}...")


async def wait_webhook(kube: KubeClient, operator: subprocess.Popen, log_path: Path, *, enabled: bool,
                       timeout: float = 180) -> None:
    """Until the operator's admission webhook answers (a dry-run create of a permit passes
    admission), so no create of the run is refused because the operator is still starting."""
    deadline = time.monotonic() + timeout
    probe = permit("bench-webhook-probe", 10)
    while True:
        if operator.poll() is not None:
            raise SystemExit(f"operator exited; see {log_path}")
        try:
            await kube.request("POST", PERMIT.path(), params={"dryRun": "All"}, body=probe)
            if not enabled:
                break
            cfgs = await kube.request("GET", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations")
            if cfgs.get("items"):
                break
        except ApiError as exc:
            if exc.status < 500:
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"the operator's webhook did not answer in {timeout:.0f}s; see {log_path}")
        await asyncio.sleep(1)
    await asyncio.sleep(2)  # its watches are open


# --- permits at scale -------------------------------------------------------------------------

async def run_permit_scale(kube: KubeClient, n: int, args: argparse.Namespace, pid: int,
                           counts: OperatorCounts) -> dict[str, Any]:
    created: dict[str, float] = {}
    active: dict[str, float] = {}
    versions: dict[str, set[str]] = {}

    def see(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in created:
            return
        versions.setdefault(name, set()).add(obj["metadata"].get("resourceVersion", ""))
        if (obj.get("status") or {}).get("phase") == "Active" and _ready(obj):
            active.setdefault(name, time.monotonic())

    rec = Recorder()
    watcher = asyncio.create_task(rec.watch(kube, PERMIT, "", see))
    await asyncio.sleep(1.0)
    api_before, ops_before = await apiserver_requests(kube), await counts.read()
    monitor = LoadMonitor(pid).start()
    sem = asyncio.Semaphore(args.concurrency)
    errors: list[str] = []
    names = [f"scale-{i:04d}" for i in range(n)]

    async def create(name: str) -> None:
        async with sem:
            created[name] = time.monotonic()
            try:
                await kube.create(permit(name, 10))
            except ApiError as exc:
                errors.append(f"{name}: {exc.message[:200]}")
                created.pop(name, None)

    start = time.monotonic()
    await asyncio.gather(*(create(name) for name in names))
    created_in = time.monotonic() - start
    deadline = time.monotonic() + args.timeout
    while len(active) < len(created) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        print(f"  {len(active)}/{len(created)} Active, load {os.getloadavg()[0]:.1f}", end="\r", flush=True)
    print()
    all_active = time.monotonic() - start
    ops_active = await counts.read()
    # The follow-up work (child events, quota status, service accounts) settles after Active:
    # count until the operator makes no request for 10 s (or 120 s pass).
    last, quiet_since, settle_deadline = ops_active, time.monotonic(), time.monotonic() + 120
    while time.monotonic() < settle_deadline and time.monotonic() - quiet_since < 10:
        await asyncio.sleep(2)
        now_counts = await counts.read()
        if now_counts != last:
            last, quiet_since = now_counts, time.monotonic()
    load = await monitor.stop()
    api_after = await apiserver_requests(kube)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    times = [active[k] - created[k] for k in created if k in active]
    api_delta = api_after - api_before
    return {
        "permits": n, "created": len(created), "active": len(times), "create_errors": errors[:5],
        "create_error_count": len(errors), "created_in_s": round(created_in, 2),
        "all_active_in_s": round(all_active, 2), "apply_to_active": _stats(times),
        "permit_versions_mean": _r(statistics.fmean(len(v) for v in versions.values())) if versions else None,
        "operator_requests_until_all_active": count_summary(ops_before, ops_active, len(created)),
        "operator_requests_settled": count_summary(ops_before, last, len(created)),
        "apiserver_requests": {"total": sum(api_delta.values()), "per_permit": round(sum(api_delta.values()) / max(1, n), 1),
                               "by_verb": dict(api_delta)},
        **load,
    }


# --- the run ----------------------------------------------------------------------------------

async def main_async(args: argparse.Namespace, kubeconfig: str) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()] if not args.permit_scale else []
    arms = [a for a in args.arms.split(",") if a]
    kube = KubeClient(load_kubeconfig(kubeconfig), timeout=60, pool_size=64)
    provisioner = LoopbackProvisioner(kubeconfig).start()
    log_path = REPO / ".cache" / f"bench-operator{_suffix()}.log"
    counts_path = REPO / ".cache" / f"bench-operator{_suffix()}-counts.json"
    counts_path.unlink(missing_ok=True)
    env = dict(os.environ, KUBECONFIG=kubeconfig, SPE_ENCRYPTED_STORAGE_CLASSES=STORAGE_CLASS,
               SPE_DEFAULT_STORAGE_CLASS=STORAGE_CLASS, SPE_WEBHOOK_ENABLED="false" if args.no_webhook else "true",
               SPE_WEBHOOK_PORT=str(9443 + PORT_OFFSET))
    command = [sys.executable, str(HERE / "instrumented.py"), "--counts", str(counts_path)]
    if args.profile:
        command += ["--profile", args.profile]
    operator = subprocess.Popen(command, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    counts = OperatorCounts(operator.pid, counts_path)
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        for node in bench_nodes(args.nodes or max(2, -(-len(arms) * max(sizes or [0]) // PODS_PER_NODE) + 1)):
            await kube.apply(node)
        for obj in (tool(), dataset()):
            await kube.apply(obj)
        await kube.merge_patch(kind_for(API, "Dataset"), "bench-data", {"status": {"phase": "Ready"}},
                               subresource="status")
        await wait_webhook(kube, operator, log_path, enabled=not args.no_webhook)
        if args.permit_scale:
            print(f"== {args.permit_scale} permits at once", flush=True)
            report["permit_scale"] = await run_permit_scale(kube, args.permit_scale, args, operator.pid, counts)
            print(json.dumps(report["permit_scale"]), flush=True)
        else:
            per_permit = (max(sizes) + args.permits - 1) // args.permits
            for i in range(args.permits):
                # Both arms' pods count against the permit's pod quota.
                await kube.apply(permit(permit_name(i), len(arms) * per_permit))
            await wait_namespaces(kube, args.permits)
        for size in sizes:
            print(f"== {size} workspaces across {args.permits} permits, arms {args.arms} ({args.order})", flush=True)
            result = await run_size(kube, size, args.permits, args, operator.pid, counts)
            results.append(result)
            print(json.dumps(result), flush=True)
            if size != sizes[-1]:  # the last size goes with the control plane
                print("  deleting ...", flush=True)
                await delete_all(kube, args.permits)
    finally:
        operator.terminate()
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
        provisioner.stop()
        await kube.close()
    report["results"] = results
    return report


def table(results: list[dict[str, Any]]) -> str:
    head = ("workspaces", "arm", "ready", "apply→Ready p50 s", "p99 s", "max s", "ratio p50", "ratio p99",
            "operator CPU s", "RSS peak MiB", "op. requests/ws", "load1 mean", "CPU busy %")
    rows = [head]
    for r in results:
        for arm, a in r["arms"].items():
            spe = arm == "spe"
            rows.append((str(r["workspaces"]), arm, f"{a['ready']}/{a['created']}", str(a["apply_to_ready"]["p50_s"]),
                         str(a["apply_to_ready"]["p99_s"]), str(a["apply_to_ready"]["max_s"]),
                         str(r.get("ratio", {}).get("p50", "")) if spe else "",
                         str(r.get("ratio", {}).get("p99", "")) if spe else "",
                         str(r["operator_cpu_s"]) if spe else "", str(r["operator_rss_peak_mib"]) if spe else "",
                         str(r["operator_requests"]["per_item"]) if spe else "",
                         str(r["machine"]["loadavg1_mean"]), str(r["machine"]["cpu_busy_pct"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="workspace counts, comma-separated")
    parser.add_argument("--permits", type=int, default=100)
    parser.add_argument("--arms", default="spe,baseline", help="spe, baseline, or both (comma-separated)")
    parser.add_argument("--order", choices=("interleaved", "sequential"), default="interleaved")
    parser.add_argument("--rate", type=float, default=10.0, help="creations per second per arm (0: as fast as possible)")
    parser.add_argument("--concurrency", type=int, default=16, help="creations in flight per arm")
    parser.add_argument("--nodes", type=int, default=0, help="bench nodes of 250 pods (0: enough for the largest size)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for all Ready, per size")
    parser.add_argument("--permit-scale", type=int, default=0, metavar="N",
                        help="instead of workspaces: create N permits at once, time them to Active")
    parser.add_argument("--no-webhook", action="store_true", help="run the operator without its admission webhook")
    parser.add_argument("--keep", action="store_true", help="leave the bench control plane running")
    parser.add_argument("--profile", metavar="FILE", help="run the operator under cProfile, stats to FILE")
    parser.add_argument("--census", action="store_true",
                        help="count the operator's live objects by type once all are Ready (into the report)")
    parser.add_argument("--crds", default=str(REPO / "crds"), help="CRD directory to install (default: crds/)")
    parser.add_argument("--home", help="the bench control plane's home (default .cache/spe-dev-bench); two runs at "
                                       "once need two homes (and two network namespaces)")
    args = parser.parse_args(argv)
    if args.home:
        global BENCH_HOME
        BENCH_HOME = Path(args.home).resolve()

    print(f"starting the bench control plane in {BENCH_HOME} ...", flush=True)
    out = spe_dev("up", "--fresh").stdout
    kubeconfig = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export KUBECONFIG="))
    kubectl = [str(VENV_BIN / "spe-dev"), "kubectl"]
    env = dict(os.environ, SPE_DEV_HOME=str(BENCH_HOME), SPE_DEV_PORT_OFFSET=str(PORT_OFFSET))
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", args.crds], env=env,
                   check=True, capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"], env=env,
                   check=True, capture_output=True)
    started = datetime.now(timezone.utc)
    try:
        report = asyncio.run(main_async(args, kubeconfig))
    finally:
        if not args.keep:
            spe_dev("down", "--purge", check=False)
    kind = "operator-permits" if args.permit_scale else "operator-workspaces"
    report.update({
        "benchmark": kind, "started": started.isoformat(),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": vars(args),
        "what": "spe arm: create (API POST) of a running Workspace -> its Ready condition True; baseline arm: "
                "server-side apply of the same claims, StatefulSet and Service (the operator's builders, unowned) "
                "-> the pod's Ready; both on one local control plane (etcd, kube-apiserver, controller-manager, "
                "scheduler, kwok nodes); operator = spe-operator run subprocess (instrumented.py counts its API "
                "requests), RSS and CPU from /proc",
    })
    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    prefix = "permits" if args.permit_scale else "operator"
    path = results_dir / f"{prefix}-{started.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    if report["results"]:
        print(table(report["results"]))
    print(f"written: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
