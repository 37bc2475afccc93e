"""`spe-dev`: the local Kubernetes control plane for development and tests.

    spe-dev up [--fresh] [--no-real-node]
                             start etcd, kube-apiserver, kube-controller-manager, kube-scheduler
                             and kwok in the background, then the real node spe-node-1
                             (containerd, kubelet, kube-proxy, kube-router in a network namespace
                             of its own); idempotent; prints `export KUBECONFIG=...`
    spe-dev down [--purge]   stop every process spe-dev started for this home (only those) and
                             remove the real node's namespace, interfaces, mounts and cgroups
    spe-dev status           show the processes, their health and memory
    spe-dev kubectl ARGS...  run the kubectl built with the control plane against it

State lives in $SPE_DEV_HOME (default <repo>/.cache/spe-dev). Ports default to fixed loopback
ports, shifted by $SPE_DEV_PORT_OFFSET or set one by one with $SPE_DEV_<COMPONENT>_PORT.
SPE_DEV_REAL_NODE=0 (or --no-real-node) runs the kwok nodes only (no root needed).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from .cluster import ControlPlane, SpeDevError, effective_settings
from .settings import Settings


def _say(msg: str) -> None:
    print(msg, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `kubectl` passes everything after it through untouched (argparse would eat its flags).
    if argv and argv[0] == "kubectl":
        return _kubectl(argv[1:])
    parser = argparse.ArgumentParser(prog="spe-dev", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local control plane (idempotent)")
    up.add_argument("--fresh", action="store_true", help="start from an empty etcd when nothing runs")
    up.add_argument("--no-real-node", action="store_true",
                    help="kwok's fake nodes only, no real node (same as SPE_DEV_REAL_NODE=0)")
    down = sub.add_parser("down", help="stop the local control plane")
    down.add_argument("--purge", action="store_true", help="also delete the etcd data")
    sub.add_parser("status", help="show the state of the local control plane")
    sub.add_parser("kubectl", help="run kubectl against the local control plane")
    sub.add_parser("env", help="print the export KUBECONFIG line")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
        if getattr(args, "no_real_node", False):
            settings = replace(settings, real_node=False)
        cp = ControlPlane(settings, say=_say)
    except RuntimeError as err:
        print(f"spe-dev: error: {err}", file=sys.stderr)
        return 1
    try:
        if args.command == "up":
            cp.up(fresh=args.fresh)
            return 0
        if args.command == "down":
            cp.down(purge=args.purge)
            return 0
        if args.command == "status":
            ok, lines = cp.status_lines()
            print("\n".join(lines))
            return 0 if ok else 3
        if args.command == "env":
            print(cp.export_line())
            return 0
    except SpeDevError as err:
        print(f"spe-dev: error: {err}", file=sys.stderr)
        if args.command == "up" and cp.running():
            print("spe-dev: what did start is still running; `spe-dev down` stops it", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


def _kubectl(args: list[str]) -> int:
    try:
        settings = effective_settings(Settings.from_env())
    except (RuntimeError, OSError) as err:
        print(f"spe-dev: error: {err}", file=sys.stderr)
        return 1
    kubectl = settings.binary("kubectl")
    if not os.access(kubectl, os.X_OK):
        print(f"spe-dev: error: {kubectl} is missing; run `make controlplane` first", file=sys.stderr)
        return 1
    env = dict(os.environ, KUBECONFIG=str(settings.admin_kubeconfig))
    os.execve(kubectl, [str(kubectl), *args], env)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
