"""``spe-gpu-agent``: run the node agent (the DaemonSet's command), or sample once.

    spe-gpu-agent                       # the loop: needs NODE_NAME and API credentials
    spe-gpu-agent --once                # one tick against the cluster, its result as JSON
    spe-gpu-agent --once --no-kube      # inventory and a utilisation sample, no cluster (device check)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time

from spe_kube import KubeClient, load_kubeconfig

from .agent import Agent, inventory_report
from .metrics import GpuMetrics
from .nvml import Nvml, NvmlUnavailable
from .settings import AgentSettings

EXIT_NVML_UNAVAILABLE = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spe-gpu-agent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--node", help="this node's name (default: $NODE_NAME)")
    p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, in-cluster)")
    p.add_argument("--once", action="store_true", help="one tick, print the result as JSON, exit")
    p.add_argument("--no-kube", action="store_true", help="with --once: only NVML, no cluster")
    p.add_argument("--samples", type=int, default=3, help="with --once --no-kube: utilisation samples to take")
    p.add_argument("--sample-interval", type=float, help="seconds between NVML samples")
    p.add_argument("--publish-interval", type=float, help="at most one status write per workspace this often")
    p.add_argument("--idle-threshold", type=int, help="utilisation percent under which a GPU is idle")
    p.add_argument("--proc-root", help="the host's /proc (mounted into the pod)")
    p.add_argument("--otlp-endpoint", help="OTLP/HTTP base URL for metrics")
    p.add_argument("--metric-interval", type=float, help="seconds between metric exports")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def loaded_library() -> str | None:
    """Which libnvidia-ml this process loaded (the device check shows it is the driver's)."""
    try:
        for line in open("/proc/self/maps", encoding="utf-8"):
            if "libnvidia-ml.so" in line:
                return line.split()[-1]
    except OSError:
        pass
    return None


def _local_check(samples: int, interval: float) -> int:
    """Inventory plus utilisation samples straight from NVML (the device check)."""
    try:
        nvml = Nvml()
    except NvmlUnavailable as exc:
        print(json.dumps({"error": exc.reason, "message": exc.message}, indent=2))
        return EXIT_NVML_UNAVAILABLE
    try:
        report = {"library": loaded_library(), **inventory_report(nvml.inventory())}
        series = []
        for i in range(max(1, samples)):
            if i:
                time.sleep(interval)
            inv = nvml.inventory()
            series.append({"t": round(time.time(), 3), "utilizationPercent": {
                g.uuid or str(g.index): g.utilization for g in inv.gpus},
                "memoryUsed": {g.uuid or str(g.index): g.memory_used for g in inv.gpus}})
        report["samples"] = series
        print(json.dumps(report, indent=2))
        return 0
    finally:
        nvml.close()


async def _run(settings: AgentSettings, once: bool) -> int:
    metrics = (GpuMetrics.otlp(settings.otlp_endpoint, settings.metric_interval, settings.node_name or "")
               if settings.otlp_endpoint else GpuMetrics(node=settings.node_name or ""))
    kube = KubeClient(load_kubeconfig(settings.kubeconfig), field_manager="spe-gpu-agent",
                      timeout=settings.request_timeout)
    agent = Agent(settings, kube, metrics)
    try:
        if once:
            result = await agent.tick()
            out = {"inventory": inventory_report(result.inventory) if result.inventory else None,
                   "workspaces": {s.pod.workspace: {"namespace": s.pod.namespace, "uuids": list(s.uuids),
                                                    "utilizationPercent": s.utilization}
                                  for s in result.samples.values()}}
            if result.problem is not None:
                out["error"] = {"reason": result.problem.reason, "message": result.problem.message}
            print(json.dumps(out, indent=2))
            return EXIT_NVML_UNAVAILABLE if result.problem else 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await agent.run(stop)
        return 0
    finally:
        agent.close()
        await kube.close()
        metrics.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = AgentSettings.from_env(
        node_name=args.node, kubeconfig=args.kubeconfig, sample_interval=args.sample_interval,
        publish_interval=args.publish_interval, idle_threshold_percent=args.idle_threshold,
        proc_root=args.proc_root, otlp_endpoint=args.otlp_endpoint, metric_interval=args.metric_interval)
    if args.once and args.no_kube:
        return _local_check(args.samples, min(settings.sample_interval, 1.0))
    if not settings.node_name:
        print("spe-gpu-agent: the node's name is needed: --node or $NODE_NAME (the DaemonSet sets it from "
              "spec.nodeName)", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, args.once))


if __name__ == "__main__":
    sys.exit(main())
