"""`spe-dev`: the local Kubernetes control plane for development and tests.

    spe-dev [--cluster NAME] up [--fresh] [--no-real-node]
                             start etcd, kube-apiserver, kube-controller-manager, kube-scheduler
                             and kwok in the background, then the real node spe-node-1
                             (containerd, kubelet, kube-proxy, kube-router in a network namespace
                             of its own); idempotent; prints `export KUBECONFIG=...`
    spe-dev down [--purge]   stop every process spe-dev started for this home (only those) and
                             remove the real node's namespace, interfaces, mounts and cgroups
    spe-dev status           show the processes, their health and memory
    spe-dev kubectl ARGS...  run the kubectl built with the control plane against it
    spe-dev federation join --hub CENTRAL --cluster NODE [--tier 3] [--dataset NAME ...]
                             start Open Cluster Management's hub on the named cluster CENTRAL
                             (once) and NODE's klusterlet agent, which dials CENTRAL; accept it
                             there, labelled with its tier and the datasets it holds
    spe-dev federation status --hub CENTRAL [--cluster NODE]
                             the OCM processes and their memory

`--cluster NAME` (or SPE_DEV_CLUSTER=NAME; before or after the command) runs another, independent
control plane beside the default one: its own home <home>-NAME, its own ports and kubeconfig,
kwok nodes only unless SPE_DEV_REAL_NODE=1. A federation uses two: `spe-dev --cluster central
up`, `spe-dev --cluster node-a up`, then `spe-dev federation join` (see docs/federation.md).

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


def _take_cluster(argv: list[str]) -> tuple[str | None, list[str]]:
    """A leading ``--cluster NAME`` / ``--cluster=NAME`` (before the command)."""
    if argv and argv[0] == "--cluster" and len(argv) > 1:
        return argv[1], argv[2:]
    if argv and argv[0].startswith("--cluster="):
        return argv[0].split("=", 1)[1], argv[1:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cluster, argv = _take_cluster(argv)
    # `kubectl` passes everything after it through untouched (argparse would eat its flags).
    if argv and argv[0] == "kubectl":
        return _kubectl(argv[1:], cluster)
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
    fed = sub.add_parser("federation", help="Open Cluster Management between two named clusters")
    fed.add_argument("action", choices=("join", "status"))
    fed.add_argument("--hub", required=True, metavar="CENTRAL", help="the named cluster running the hub")
    fed.add_argument("--tier", type=int, choices=(2, 3), default=3,
                     help="the node's tier: 3 receives permits and runs workspaces, 2 discovery only")
    fed.add_argument("--dataset", action="append", default=[], metavar="NAME", help="a dataset the node holds")
    fed.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                     help="another label for the node's ManagedCluster")
    for p in (up, down, fed, *(sub.choices[n] for n in ("status", "env"))):
        p.add_argument("--cluster", metavar="NAME", default=None,
                       help="a named cluster beside the default one (own home, ports, kubeconfig)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env(cluster=getattr(args, "cluster", None) or cluster)
        if getattr(args, "no_real_node", False):
            settings = replace(settings, real_node=False)
        if args.command == "federation":
            return _federation(args, cluster)
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


def _federation(args: argparse.Namespace, cluster: str | None) -> int:
    from .ocm import Federation, parse_labels  # noqa: PLC0415 - only this command needs it

    node = getattr(args, "cluster", None) or cluster
    try:
        fed = Federation(Settings.from_env(cluster=args.hub), say=_say)
        if args.action == "status":
            for name in filter(None, (args.hub, node)):
                for comp, mib in Federation.memory(Settings.from_env(cluster=name)).items():
                    print(f"{name:<12} {comp:<28} rss {mib:7.1f} MiB")
            return 0
        if not node:
            raise SpeDevError("join needs the node's cluster: --cluster NAME")
        from spe_operator.federation import LABEL_TIER, dataset_label  # noqa: PLC0415

        labels = {LABEL_TIER: str(args.tier), **{dataset_label(d): "held" for d in args.dataset},
                  **parse_labels(args.label)}
        fed.hub_up()
        fed.join(Settings.from_env(cluster=node), node, labels)
        return 0
    except (SpeDevError, RuntimeError) as err:
        print(f"spe-dev: error: {err}", file=sys.stderr)
        return 1


def _kubectl(args: list[str], cluster: str | None = None) -> int:
    try:
        settings = effective_settings(Settings.from_env(cluster=cluster))
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
