"""``spe-ingest``: the command line.

Exit codes (run): 0 accepted, 3 refused by the re-identification threshold,
2 usage error, 1 unexpected failure.  (verify): 0 intact, 4 verification
failed, 2 usage error, 1 unexpected failure.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__, manifest as mf
from .keys import KeyMaterialError, domain_key
from .pipeline import RunConfig, UsageError, run
from .profile import PROFILES, ProfileError, compile_profile
from .rules import OPTIONS

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED, EXIT_VERIFY = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 already; keep the message short
        self.print_usage(sys.stderr)
        print(f"spe-ingest: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spe-ingest", description=(
        "De-identify a tree of DICOM files (PS3.15 Annex E) into an SPE dataset."))
    parser.add_argument("--version", action="version", version=f"spe-ingest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="de-identify SRC into DST")
    r.add_argument("src", metavar="SRC", type=Path)
    r.add_argument("dst", metavar="DST", type=Path)
    r.add_argument("--key-file", required=True, type=Path,
                   help="secret key material for pseudonyms (at least 32 bytes)")
    r.add_argument("--site", required=True, help="site name (part of the pseudonym domain)")
    r.add_argument("--project", required=True, help="project name (part of the pseudonym domain)")
    r.add_argument("--profile", choices=PROFILES, default="basic")
    r.add_argument("--option", action="append", default=[], choices=OPTIONS, metavar="OPTION",
                   help="a PS3.15 option, repeatable: " + ", ".join(OPTIONS))
    r.add_argument("--k-threshold", type=int, default=1, metavar="K",
                   help="refuse the dataset when k-anonymity is below K (default 1: off)")
    r.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N")
    r.add_argument("--show-source-paths", action="store_true",
                   help="name refused inputs on stderr by their source path (paths often carry "
                        "patients' names; by default they are named by their keyed identifier)")
    r.add_argument("--signing-key", type=Path, metavar="FILE",
                   help="Ed25519 private key (PEM PKCS#8 or 32 raw bytes) to sign the manifest")
    v = sub.add_parser("verify", help="check DST against its manifest and signature")
    v.add_argument("dst", metavar="DST", type=Path)
    v.add_argument("--public-key", type=Path, metavar="FILE",
                   help="Ed25519 public key (PEM or 32 raw bytes) that must have signed it")
    return parser


def _cmd_run(args) -> int:
    if args.k_threshold < 1:
        raise UsageError("--k-threshold must be at least 1")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    try:
        key_material = args.key_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --key-file: {exc.strerror}") from None
    try:
        dkey = domain_key(key_material, args.project, args.site)
        profile = compile_profile(args.profile, args.option)
        signing = mf.load_private_key(args.signing_key) if args.signing_key else None
    except (KeyMaterialError, ProfileError, mf.KeyFileError, OSError) as exc:
        raise UsageError(str(exc)) from None
    cfg = RunConfig(src=args.src, dst=args.dst, profile=profile, dkey=dkey, site=args.site,
                    project=args.project, k_threshold=args.k_threshold,
                    workers=args.workers, signing_key=signing,
                    progress=sys.stderr.isatty(), show_paths=args.show_source_paths)
    result = run(cfg)
    counts = result.report["counts"]
    risk = result.report["k_anonymity"]
    print(f"{result.report['status']}: {counts['accepted']} accepted, "
          f"{counts['quarantined']} quarantined, {counts['dropped']} dropped, "
          f"{counts['duplicate']} duplicate, {counts['rejected']} rejected; "
          f"k={risk['k']} (threshold {risk['threshold']}); manifest {result.manifest_digest}")
    if result.exit_code == EXIT_REFUSED:
        print(f"spe-ingest: refused: k-anonymity {risk['k']} is below {risk['threshold']} "
              f"({len(risk['classes_below_threshold'])} classes too small; see report.json)",
              file=sys.stderr)
    return result.exit_code


def _cmd_verify(args) -> int:
    try:
        public = mf.load_public_key(args.public_key) if args.public_key else None
    except (mf.KeyFileError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if not (args.dst / mf.MANIFEST).is_file():
        raise UsageError(f"{args.dst} has no {mf.MANIFEST}")
    problems = mf.verify(args.dst, public)
    for problem in problems:
        print(f"spe-ingest: verify: {problem}", file=sys.stderr)
    if problems:
        return EXIT_VERIFY
    print("intact" + (" and signed by the given key" if public else ""))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _cmd_run(args) if args.command == "run" else _cmd_verify(args)
    except UsageError as exc:
        print(f"spe-ingest: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("spe-ingest: interrupted; run again with the same arguments to resume",
              file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the documented exit code 1
        print(f"spe-ingest: unexpected failure: {exc.__class__.__name__}: {exc}",
              file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
