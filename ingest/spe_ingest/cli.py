"""``spe-ingest``: the command line.

Exit codes (run): 0 accepted (or a shard done), 3 refused by the re-identification
threshold, 2 usage error, 1 unexpected failure.  (verify): 0 intact, 4 verification
failed, 2 usage error, 1 unexpected failure.  (pseudonyms): 0 listed, 2 no accepted
dataset in DST.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import __version__, jobreport, manifest as mf
from .keys import DATE_SHIFT_DAYS, KeyMaterialError, domain_key
from .pipeline import RunConfig, UsageError, run
from .profile import PROFILES, ProfileError, compile_profile
from .risk import QI_KEYWORDS
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
    r.add_argument("--date-shift-max-days", type=int, default=DATE_SHIFT_DAYS, metavar="DAYS",
                   help=f"bound of the per-patient date shift (1..{DATE_SHIFT_DAYS}, default "
                        f"{DATE_SHIFT_DAYS})")
    r.add_argument("--quasi-identifier", action="append", default=[], choices=sorted(QI_KEYWORDS),
                   metavar="KEYWORD", help="a DICOM keyword k-anonymity is measured over, "
                   "repeatable (default: all of " + ", ".join(sorted(QI_KEYWORDS)) + ")")
    r.add_argument("--screenshots", choices=("drop", "quarantine"), default="drop",
                   help="screen saves: drop them (default) or hold them in quarantine/")
    r.add_argument("--secondary-captures", choices=("quarantine", "drop"), default="quarantine",
                   help="other secondary captures: hold them in quarantine/ (default) or drop them")
    r.add_argument("--shard-count", type=int, default=0, metavar="N",
                   help="de-identify one of N shards only (no report or manifest: a later run "
                        "with the same arguments and no --shard-count merges the shards)")
    r.add_argument("--shard-index", type=int, metavar="I",
                   help="the shard, 0..N-1 (default: $JOB_COMPLETION_INDEX, an Indexed Job's)")
    r.add_argument("--summary-file", type=Path, metavar="FILE",
                   help="also write a compact JSON summary there (a Job's /dev/termination-log)")
    r.add_argument("--progress-every", type=float, default=0.0, metavar="SECONDS",
                   help="print 'progress: N files' on stderr at most this often (for log readers)")
    p = sub.add_parser("pseudonyms", help="list the SHA-256 of each accepted patient's pseudonym")
    p.add_argument("dst", metavar="DST", type=Path)
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
    if not 1 <= args.date_shift_max_days <= DATE_SHIFT_DAYS:
        raise UsageError(f"--date-shift-max-days must be 1..{DATE_SHIFT_DAYS}")
    shard = None
    if args.shard_count:
        index = args.shard_index
        if index is None:
            raw = os.environ.get("JOB_COMPLETION_INDEX", "")
            if not raw.isdigit():
                raise UsageError("--shard-count needs --shard-index or $JOB_COMPLETION_INDEX")
            index = int(raw)
        if args.shard_count < 1 or not 0 <= index < args.shard_count:
            raise UsageError("--shard-index must be 0..N-1 for --shard-count N")
        shard = (index, args.shard_count)
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
                    progress=sys.stderr.isatty(), show_paths=args.show_source_paths,
                    date_shift_max_days=args.date_shift_max_days,
                    quasi_identifiers=tuple(QI_KEYWORDS[k] for k in args.quasi_identifier) or None,
                    quarantine_screenshots=args.screenshots == "quarantine",
                    drop_secondary_captures=args.secondary_captures == "drop",
                    shard=shard, progress_every=args.progress_every)
    result = run(cfg)
    refusal = ""
    if result.exit_code == EXIT_REFUSED:
        risk = result.report["k_anonymity"]
        refusal = (f"refused: k-anonymity {risk['k']} is below {risk['threshold']} "
                   f"({len(risk['classes_below_threshold'])} classes too small)")
    _write_summary(args, jobreport.summary(result.report, result.exit_code, refusal))
    if shard:
        print(f"shard {shard[0]} of {shard[1]}: {result.report['counts']['inputs']} inputs")
        return result.exit_code
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


def _write_summary(args, doc: dict) -> None:
    path = getattr(args, "summary_file", None)
    if path is None:
        return
    try:
        path.write_bytes(jobreport.encode_summary(doc))
    except OSError as exc:
        print(f"spe-ingest: cannot write --summary-file: {exc.strerror}", file=sys.stderr)


def _cmd_pseudonyms(args) -> int:
    try:
        hashes = jobreport.pseudonym_hashes(args.dst)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write("".join(h + "\n" for h in hashes))
    return EXIT_OK


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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a deleted or evicted ingest pod, a drained node) interrupts like Ctrl-C: as a
    # container's process 1 the command would otherwise ignore it and run on until SIGKILL.
    # The journal makes the interrupted run resumable; exit 1 lets the Job retry it.
    signal.signal(signal.SIGTERM, _interrupt)
    args = build_parser().parse_args(argv)
    commands = {"run": _cmd_run, "verify": _cmd_verify, "pseudonyms": _cmd_pseudonyms}
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"spe-ingest: error: {exc}", file=sys.stderr)
        _write_summary(args, jobreport.summary({"status": "error"}, EXIT_USAGE, f"error: {exc}"))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("spe-ingest: interrupted; run again with the same arguments to resume",
              file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the documented exit code 1
        print(f"spe-ingest: unexpected failure: {exc.__class__.__name__}: {exc}",
              file=sys.stderr)
        _write_summary(args, jobreport.summary({"status": "error"}, EXIT_FAILURE,
                                               f"unexpected failure: {exc.__class__.__name__}: {exc}"))
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
