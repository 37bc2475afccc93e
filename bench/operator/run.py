"""Benchmark the Workspace reconciler: time from creating a Workspace to its Ready condition,
and the operator's memory, at 100 and at 1,000 workspaces across 100 permits.

    .venv/bin/python bench/operator/run.py [--sizes 100,1000] [--permits 100] [--rate 10] [--keep]

It starts a private local control plane (``spe-dev`` with home ``.cache/spe-dev-bench`` and
shifted ports, so the developers' and the tests' clusters are left alone), installs the CRDs,
adds bench nodes (kwok, 250 pods each, so 1,000 servers fit), runs the loopback volume
provisioner of the test suite (it binds the ``spe-encrypted`` claims; no CSI driver can run
here), and the operator as a subprocess, ``spe-operator run``, exactly as deployed (admission
webhook included unless ``--no-webhook``).

Per size: workspaces are created through the API (running, CPU-only, small), spread round-robin
over the permits, at ``--rate`` per second (0: all at once, ``--concurrency`` in flight); a
watch records, per workspace, when the operator first wrote its status (children applied) and
when Ready became True. The operator's RSS is sampled every 0.25 s from /proc. Then everything
is deleted before the next size. A table is printed and JSON written to
``bench/results/operator-<timestamp>.json``.

Besides create→Ready (the figure asked for) it records where the time goes: the create request
itself (API server + admission webhook), the operator's first status write (children applied),
and the operator's reaction from the server pod's Ready (set by kwok) to the Workspace's Ready.

What bounds the figures on this machine: two shared cores run etcd, the API server, the
controller-manager (client QPS 20 by default: it creates every pod and binds every claim, two
per workspace, several writes each), the scheduler, kwok, the provisioner, the operator (with
its webhook and the permit reconciler) and this script; other sessions' work shares the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from spe_dev.nodes import FakeNode, node_manifest  # noqa: E402
from spe_kube import ApiError, KubeClient, kind_for, load_kubeconfig  # noqa: E402
from tests.fixtures.storage import LoopbackProvisioner  # noqa: E402

BENCH_HOME = REPO / ".cache" / "spe-dev-bench"
PORT_OFFSET = 200
VENV_BIN = Path(sys.executable).parent
API = "spe.ehds.io/v1alpha1"
WS = kind_for(API, "Workspace")
NODE = kind_for("v1", "Node")
NAMESPACE = kind_for("v1", "Namespace")
IMAGE = "registry.invalid/spe/jupyterlab:4.2@sha256:" + "c" * 64
BENCH_LABEL = "spe.ehds.io/bench"


# --- set-up -----------------------------------------------------------------------------------

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
        m["status"]["capacity"]["pods"] = m["status"]["allocatable"]["pods"] = "250"
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


def permit(i: int, per_permit: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "DataPermit", "metadata": {"name": f"bench-{i:03d}"}, "spec": {
        "permitId": f"HDAB-BENCH-{i:03d}", "purpose": "Benchmark of the workspace reconciler.",
        "members": [{"subject": "alice@example.org"}], "datasets": ["bench-data"],
        "notAfter": "2099-01-01T00:00:00Z",
        "ceilings": {"cpu": "64", "memory": "256Gi", "storage": "10Ti", "maxWorkspaces": max(10, per_permit)}}}


def workspace(i: int, permits: int) -> dict[str, Any]:
    p = f"bench-{i % permits:03d}"
    return {"apiVersion": API, "kind": "Workspace", "metadata": {"name": f"w{i:04d}", "namespace": f"spe-{p}"},
            "spec": {"permit": p, "members": ["alice@example.org"], "tool": "bench-jupyterlab",
                     "resources": {"cpu": "10m", "memory": "64Mi"}, "storage": {"size": "1Gi"},
                     "idleTimeoutMinutes": 0, "running": True}}


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


class Recorder:
    """Watches Workspaces; records the first status write and the first Ready=True per workspace."""

    def __init__(self) -> None:
        self.created: dict[tuple[str, str], float] = {}
        self.first_status: dict[tuple[str, str], float] = {}
        self.ready: dict[tuple[str, str], float] = {}
        self.pod_ready: dict[tuple[str, str], float] = {}  # the server pod Ready (kwok), per workspace

    def see_pod(self, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        ws = (md.get("labels") or {}).get("spe.ehds.io/workspace")
        conds = (obj.get("status") or {}).get("conditions") or []
        if ws and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            self.pod_ready.setdefault((md.get("namespace", ""), ws), time.monotonic())

    def see(self, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        st = obj.get("status") or {}
        now = time.monotonic()
        if st.get("observedGeneration") is not None:
            self.first_status.setdefault(key, now)
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []):
            self.ready.setdefault(key, now)

    async def watch(self, kube: KubeClient, kind=WS, selector: str = "") -> None:
        see = self.see if kind is WS else self.see_pod
        query = f"&labelSelector={selector}" if selector else ""
        while True:
            try:
                page = await kube.request("GET", kind.path(), params={"labelSelector": selector or None})
                for item in page.get("items", []):
                    see(item)
                rv = page["metadata"]["resourceVersion"]
                session = kube._ensure_session()  # noqa: SLF001 - the client has no watch verb
                headers = {"Accept": "application/json"}
                url = f"{kube.config.server}{kind.path()}?watch=1&resourceVersion={rv}&timeoutSeconds=600{query}"
                async with session.get(url, headers=headers, timeout=None) as resp:
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


async def run_size(kube: KubeClient, size: int, permits: int, rate: float, concurrency: int, pid: int,
                   timeout: float) -> dict[str, Any]:
    rec = Recorder()
    watcher = asyncio.create_task(rec.watch(kube))
    pod_watcher = asyncio.create_task(rec.watch(kube, kind_for("v1", "Pod"), "spe.ehds.io/workspace"))
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(rss_bytes(pid))
            await asyncio.sleep(0.25)
    sampler = asyncio.create_task(sample())
    await asyncio.sleep(1.0)  # the watch is open before the first create
    rss_before = rss_bytes(pid)
    cpu_before = cpu_seconds(pid)
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    post_latency: list[float] = []  # the create request itself: API server + admission webhook

    async def create(i: int) -> None:
        body = workspace(i, permits)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        async with sem:
            rec.created[key] = time.monotonic()
            for attempt in range(5):
                try:
                    await kube.create(body)
                    post_latency.append(time.monotonic() - rec.created[key])
                    return
                except ApiError as exc:
                    if exc.status in (500, 503, 504, 429) and attempt < 4:
                        await asyncio.sleep(0.5)
                        continue
                    errors.append(f"{key}: {exc.message[:200]}")
                    rec.created.pop(key, None)
                    return

    start = time.monotonic()
    tasks = []
    for i in range(size):
        tasks.append(asyncio.create_task(create(i)))
        if rate > 0:
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    created_in = time.monotonic() - start
    deadline = time.monotonic() + timeout
    while len(rec.ready) < len(rec.created) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        print(f"  {len(rec.ready)}/{len(rec.created)} ready, operator RSS {rss_bytes(pid) / 2**20:.0f} MiB",
              end="\r", flush=True)
    print()
    settle_until = time.monotonic() + 5
    while time.monotonic() < settle_until:
        await asyncio.sleep(0.25)
    sampler.cancel()
    watcher.cancel()
    pod_watcher.cancel()
    await asyncio.gather(sampler, watcher, pod_watcher, return_exceptions=True)
    # The operator's own reaction: from the server pod's Ready (kwok) to the Workspace's Ready.
    reaction = [rec.ready[k] - rec.pod_ready[k] for k in rec.ready if k in rec.pod_ready]

    ready = [rec.ready[k] - rec.created[k] for k in rec.created if k in rec.ready]
    first = [rec.first_status[k] - rec.created[k] for k in rec.created if k in rec.first_status]
    return {
        "workspaces": size, "permits": permits, "created": len(rec.created), "ready": len(ready),
        "create_errors": errors[:10], "create_error_count": len(errors),
        "rate_per_s": rate or None, "concurrency": concurrency, "created_in_s": round(created_in, 2),
        "all_ready_in_s": round(max(rec.ready.values()) - start, 2) if rec.ready else None,
        "ready_p50_s": _r(percentile(ready, 50)), "ready_p99_s": _r(percentile(ready, 99)),
        "ready_max_s": _r(max(ready) if ready else None), "ready_mean_s": _r(statistics.fmean(ready) if ready else None),
        "create_request_p50_s": _r(percentile(post_latency, 50)), "create_request_p99_s": _r(percentile(post_latency, 99)),
        "pod_ready_to_workspace_ready_p50_s": _r(percentile(reaction, 50)),
        "pod_ready_to_workspace_ready_p99_s": _r(percentile(reaction, 99)),
        "operator_first_status_p50_s": _r(percentile(first, 50)), "operator_first_status_p99_s": _r(percentile(first, 99)),
        "operator_cpu_s": round(cpu_seconds(pid) - cpu_before, 1),
        "operator_rss_before_mib": round(rss_before / 2**20, 1),
        "operator_rss_peak_mib": round(max(samples, default=0) / 2**20, 1),
        "operator_rss_end_mib": round(rss_bytes(pid) / 2**20, 1),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def delete_all(kube: KubeClient, permits: int) -> None:
    for i in range(permits):
        await kube.request("DELETE", WS.path(f"spe-bench-{i:03d}"))
    pods = kind_for("v1", "Pod")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        left = await kube.list(WS) + await kube.list(pods, label_selector="spe.ehds.io/workspace")
        if not left:
            return
        await asyncio.sleep(2)
    print("  (cleanup incomplete after 600 s)")


async def wait_namespaces(kube: KubeClient, permits: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    wanted = {f"spe-bench-{i:03d}" for i in range(permits)}
    sa = kind_for("v1", "ServiceAccount")
    while time.monotonic() < deadline:
        have = {n["metadata"]["name"] for n in await kube.list(NAMESPACE) if n["metadata"]["name"] in wanted
                and (n.get("status") or {}).get("phase") == "Active"}
        if have == wanted:
            accounts = {s["metadata"]["namespace"] for s in await kube.list(sa, field_selector="metadata.name=default")}
            if wanted <= accounts:
                return
        await asyncio.sleep(1)
    raise SystemExit(f"permit namespaces missing after {timeout}s: {sorted(wanted - have)[:5]}...")


async def main_async(args: argparse.Namespace, kubeconfig: str) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    kube = KubeClient(load_kubeconfig(kubeconfig), timeout=60, pool_size=64)
    provisioner = LoopbackProvisioner(kubeconfig).start()
    log_path = REPO / ".cache" / "bench-operator.log"
    env = dict(os.environ, KUBECONFIG=kubeconfig, SPE_ENCRYPTED_STORAGE_CLASSES="spe-encrypted",
               SPE_DEFAULT_STORAGE_CLASS="spe-encrypted", SPE_WEBHOOK_ENABLED="false" if args.no_webhook else "true",
               SPE_WEBHOOK_PORT=str(9443 + PORT_OFFSET))
    command = [str(VENV_BIN / "spe-operator"), "run"]
    if args.profile:
        command = [sys.executable, str(HERE / "profiled.py"), args.profile]
    operator = subprocess.Popen(command, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    results: list[dict[str, Any]] = []
    load: dict[str, Any] = {"before": os.getloadavg()}
    try:
        for node in bench_nodes(args.nodes):
            await kube.apply(node)
        for obj in (tool(), dataset()):
            await kube.apply(obj)
        await kube.merge_patch(kind_for(API, "Dataset"), "bench-data", {"status": {"phase": "Ready"}},
                               subresource="status")
        await asyncio.sleep(5)  # the operator's watches and webhook are up
        if operator.poll() is not None:
            raise SystemExit(f"operator exited; see {log_path}")
        per_permit = (max(sizes) + args.permits - 1) // args.permits
        for i in range(args.permits):
            await kube.apply(permit(i, per_permit))
        await wait_namespaces(kube, args.permits)
        for size in sizes:
            print(f"== {size} workspaces across {args.permits} permits", flush=True)
            result = await run_size(kube, size, args.permits, args.rate, args.concurrency, operator.pid,
                                    timeout=args.timeout)
            result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
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
    return {"results": results, "load_average_before": [round(x, 2) for x in load["before"]]}


def table(results: list[dict[str, Any]]) -> str:
    head = ("workspaces", "ready", "create→Ready p50 s", "p99 s", "max s", "POST p50 s", "p99 s",
            "operator status p50 s", "p99 s", "pod Ready→WS Ready p50 s", "p99 s",
            "operator CPU s", "RSS peak MiB", "RSS end MiB")
    rows = [head]
    for r in results:
        rows.append((str(r["workspaces"]), f"{r['ready']}/{r['created']}", str(r["ready_p50_s"]), str(r["ready_p99_s"]),
                     str(r["ready_max_s"]), str(r.get("create_request_p50_s")), str(r.get("create_request_p99_s")),
                     str(r["operator_first_status_p50_s"]),
                     str(r["operator_first_status_p99_s"]), str(r.get("pod_ready_to_workspace_ready_p50_s")),
                     str(r.get("pod_ready_to_workspace_ready_p99_s")), str(r["operator_cpu_s"]), str(r["operator_rss_peak_mib"]),
                     str(r["operator_rss_end_mib"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="workspace counts, comma-separated")
    parser.add_argument("--permits", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="creations per second (0: as fast as possible)")
    parser.add_argument("--concurrency", type=int, default=16, help="creations in flight")
    parser.add_argument("--nodes", type=int, default=5, help="bench nodes of 250 pods")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for all Ready, per size")
    parser.add_argument("--no-webhook", action="store_true", help="run the operator without its admission webhook")
    parser.add_argument("--keep", action="store_true", help="leave the bench control plane running")
    parser.add_argument("--profile", metavar="FILE", help="run the operator under cProfile, stats to FILE")
    parser.add_argument("--crds", default=str(REPO / "crds"), help="CRD directory to install (default: crds/)")
    args = parser.parse_args(argv)

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
    report.update({
        "benchmark": "operator-workspaces", "started": started.isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": vars(args),
        "what": "create (API POST) of a running Workspace -> its Ready condition True; operator = spe-operator run "
                "subprocess, RSS from /proc; local control plane (etcd, kube-apiserver, controller-manager, "
                "scheduler, kwok) on the same machine",
    })
    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"operator-{started.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(table(report["results"]))
    print(f"written: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
