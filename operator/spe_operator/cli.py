"""``spe-operator``: run the operator, check a cluster (``doctor``), or generate the CRDs from the
resource models."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from .runtime import run  # noqa: PLC0415 - keep `crds` free of Kopf start-up
    from .settings import SpeSettings, UnknownSettingsError  # noqa: PLC0415

    overrides = {"standalone": False} if args.peering else {}
    if args.namespace:
        overrides["operator_namespace"] = args.namespace
    try:
        settings = SpeSettings.from_env(strict=args.strict_settings, **overrides)
    except UnknownSettingsError as exc:
        print(f"spe-operator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from spe_kube import KubeClient, load_kubeconfig  # noqa: PLC0415

    from .doctor import exit_code, render_table  # noqa: PLC0415
    from .doctor.run import read_settings_file, run_all  # noqa: PLC0415
    from .settings import SpeSettings, UnknownSettingsError  # noqa: PLC0415

    try:
        environ = read_settings_file(args.settings) if args.settings else None
        settings = SpeSettings.from_env(environ, strict=bool(args.settings))
    except (OSError, ValueError, UnknownSettingsError) as exc:  # pydantic's errors are ValueErrors
        print(f"spe-operator doctor: the settings are not valid: {exc}", file=sys.stderr)
        return 1

    async def _main() -> int:
        async with KubeClient(load_kubeconfig(args.kubeconfig)) as kube:
            results = await run_all(kube, settings, probe_image=args.probe_image, probe_node=args.probe_node,
                                    network=not args.skip_network)
        print(render_table(results))
        return exit_code(results)

    return asyncio.run(_main())


def _cmd_site(args: argparse.Namespace) -> int:
    from .site import create_site  # noqa: PLC0415

    overlay = Path(args.overlay)
    if not (overlay / "settings.env").exists():
        print(f"spe-operator site: {overlay} is not an overlay with a settings.env "
              "(use manifests/overlays/node or manifests/overlays/central)", file=sys.stderr)
        return 1
    images = {}
    for item in args.image or []:
        name, sep, ref = item.partition("=")
        if not sep:
            print(f"spe-operator site: --image takes NAME=REFERENCE, got {item!r}", file=sys.stderr)
            return 1
        images[name] = ref
    directory = create_site(Path(args.directory), overlay, images=images,
                            oidc_client_secret=args.oidc_client_secret,
                            hub_oidc_client_secret=args.hub_oidc_client_secret)
    print(f"{directory}: edit {directory / 'settings.env'}, then: kubectl apply --server-side -k {directory}")
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
    run.add_argument("--strict-settings", action="store_true",
                     help="refuse any SPE_* variable that is not a setting (the installed Deployment passes it)")
    run.set_defaults(func=_cmd_run)
    doctor = sub.add_parser("doctor", help="check that the cluster is fit to be an SPE (exit 0 safe, 1 not "
                                           "ready, 2 UNSAFE) and print a table")
    doctor.add_argument("--settings", help="the installation's settings file (e.g. "
                                           "manifests/overlays/node/settings.env; default: $SPE_* variables)")
    doctor.add_argument("--probe-image", help="image with python3 for the two NetworkPolicy probe pods "
                                              "(e.g. the operator's image, by digest)")
    doctor.add_argument("--probe-node", help="run the probe pods on this node (default: where the scheduler puts them)")
    doctor.add_argument("--skip-network", action="store_true",
                        help="skip the NetworkPolicy probe (the verdict can then never be SAFE for it)")
    doctor.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    doctor.set_defaults(func=_cmd_doctor)
    site = sub.add_parser("site", help="create an installation's directory: its settings file, generated "
                                       "Secrets and a kustomization applying an overlay with them")
    site.add_argument("directory", help="where (created; existing settings and keys are kept)")
    site.add_argument("--overlay", default="manifests/overlays/node", help="the overlay (default: %(default)s)")
    site.add_argument("--image", action="append", metavar="NAME=REF",
                      help="a released image, e.g. operator=registry.example/spe/operator@sha256:...")
    site.add_argument("--oidc-client-secret", help="the spe-egress client's secret in your IdP (default: random; "
                                                  "set it in the IdP)")
    site.add_argument("--hub-oidc-client-secret", help="the spe-hub client's secret in your IdP (default: random; "
                      "set it in the IdP)")
    site.set_defaults(func=_cmd_site)
    crds = sub.add_parser("crds", help="write crds/*.yaml generated from the resource models")
    crds.add_argument("-o", "--output", default="crds", help="output directory (default: crds)")
    crds.set_defaults(func=_cmd_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
