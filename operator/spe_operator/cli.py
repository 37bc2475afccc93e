"""``spe-operator``: run the operator, or generate the CRDs from the resource models."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from .runtime import run  # noqa: PLC0415 - keep `crds` free of Kopf start-up
    from .settings import SpeSettings  # noqa: PLC0415

    overrides = {"standalone": False} if args.peering else {}
    if args.namespace:
        overrides["operator_namespace"] = args.namespace
    settings = SpeSettings.from_env(**overrides)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0
    return 0


def _cmd_crds(args: argparse.Namespace) -> int:
    from spe_api.crdgen import write_crds  # noqa: PLC0415

    written = write_crds(Path(args.output))
    for path in written:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spe-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current KUBECONFIG (Ctrl-C stops)")
    run.add_argument("--peering", action="store_true", help="use Kopf peering instead of standalone mode")
    run.add_argument("--namespace", help="the operator's namespace (default: $SPE_OPERATOR_NAMESPACE or spe-system)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)
    crds = sub.add_parser("crds", help="write crds/*.yaml generated from the resource models")
    crds.add_argument("-o", "--output", default="crds", help="output directory (default: crds)")
    crds.set_defaults(func=_cmd_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
