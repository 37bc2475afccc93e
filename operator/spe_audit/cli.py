"""``spe-audit``: verify, append to, show the audit trail; make a checkpoint-signing key.

Exit codes: 0 success (verify: the log is intact), 1 verify found tampering, 2 usage errors
(bad arguments, missing files, unreadable keys).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .acts import KNOWN_ACTIONS, OUTCOMES, Act
from .checkpoint import Checkpoint, generate_keypair, load_public_key
from .log import AuditError, AuditLog
from .record import MalformedRecord, parse_line, parse_time
from .verify import log_groups, verify

EXIT_OK, EXIT_TAMPERED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spe-audit",
        description="The SPE audit trail: a hash-chained JSON-lines log with signed checkpoints.",
        epilog="Exit codes: 0 ok/intact, 1 tampering found (verify), 2 usage error.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("verify", help="check that a log is complete and unedited",
                       description="Check every record's hash, the chain of prev links, checkpoint "
                                   "signatures and (optionally) a published checkpoint. Exit 0 when "
                                   "intact; 1 naming the first bad record (file:line, seq) and the kind: "
                                   "edited, deleted, inserted, reordered, truncated, bad signature.")
    v.add_argument("path", metavar="FILE|DIR", help="a log file, or a directory of a log's rotated segments")
    v.add_argument("--public-key", action="append", default=[], metavar="PEM",
                   help="trusted Ed25519 public key (repeatable); every checkpoint must be signed by one")
    v.add_argument("--checkpoint", metavar="SEQ:HASH",
                   help="a checkpoint kept elsewhere (the audit ConfigMap's seq and hash): the log must "
                        "reach SEQ and record SEQ must have HASH")
    v.add_argument("--checkpoint-file", metavar="FILE",
                   help="the same, read from a checkpoint JSON or a ConfigMap (kubectl get cm -o yaml); "
                        "with --public-key its signature must verify")
    v.add_argument("--segment", action="store_true",
                   help="the first file is a rotated segment whose predecessors are gone; accept its start")
    v.add_argument("--strict", action="store_true", help="also require every line in canonical form")
    v.add_argument("--quiet", "-q", action="store_true", help="print only problems")

    a = sub.add_parser("append", help="append one record (scripts, manual interventions)",
                       description="Append one record, taking the same lock as the services. Prints its "
                                   "seq and hash.")
    a.add_argument("path", metavar="FILE")
    a.add_argument("--actor", required=True, help="who acted, e.g. user:alice or system:spe-operator")
    a.add_argument("--action", required=True,
                   help=f"the act, e.g. {Act.PERMIT_REVOKED.value} (see the package README); "
                        "a name outside the list must still look like noun.verb")
    a.add_argument("--target", help="what was acted on, e.g. DataPermit/p1 or Workspace/spe-p1/ws1")
    a.add_argument("--permit", help="the data permit concerned")
    a.add_argument("--dataset", help="the dataset concerned")
    a.add_argument("--outcome", default="success", choices=sorted(OUTCOMES))
    a.add_argument("--details", metavar="JSON", help="a JSON object with further facts")
    a.add_argument("--signing-key", metavar="PEM", help="Ed25519 private key for checkpoints")
    a.add_argument("--checkpoint-every", type=int, default=1000, metavar="N")
    a.add_argument("--strict-action", action="store_true", help="refuse actions not in the documented list")

    s = sub.add_parser("show", help="print records as a readable table",
                       description="Print a log (file or directory of segments) as a table, filtered.")
    s.add_argument("path", metavar="FILE|DIR")
    s.add_argument("--permit", help="only records of this permit")
    s.add_argument("--actor", help="only records of this actor")
    s.add_argument("--action", help="only this act (prefix match: 'export.' shows all export acts)")
    s.add_argument("--dataset", help="only records of this dataset")
    s.add_argument("--outcome", choices=sorted(OUTCOMES))
    s.add_argument("--since", metavar="TIME", help="from this time on (ISO 8601: 2026-11-21 or 2026-11-21T10:00Z)")
    s.add_argument("--until", metavar="TIME", help="before this time")
    s.add_argument("--checkpoints", action="store_true", help="include checkpoint records")
    s.add_argument("--json", action="store_true", help="print matching records as JSON lines")

    k = sub.add_parser("keygen", help="create an Ed25519 key pair for signing checkpoints")
    k.add_argument("--private-key", required=True, metavar="PEM", help="where to write the private key (0600)")
    k.add_argument("--public-key", required=True, metavar="PEM", help="where to write the public key")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"verify": _verify, "append": _append, "show": _show, "keygen": _keygen}[args.command](args)
    except UsageError as e:
        print(f"spe-audit {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


def _verify(args) -> int:
    if not Path(args.path).exists():
        raise UsageError(f"{args.path}: no such file or directory")
    try:
        keys = [load_public_key(k) for k in args.public_key]
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read public key: {e}") from None
    if args.checkpoint and args.checkpoint_file:
        raise UsageError("give --checkpoint or --checkpoint-file, not both")
    cp, trusted = None, True
    try:
        if args.checkpoint:
            cp = Checkpoint.parse(args.checkpoint)
        elif args.checkpoint_file:
            cp, trusted = Checkpoint.load(args.checkpoint_file), False
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(str(e)) from None
    groups = log_groups(args.path)
    if not groups:
        raise UsageError(f"{args.path}: no *.jsonl log files in this directory")
    if cp is not None and len(groups) > 1:
        raise UsageError(f"{args.path} holds {len(groups)} logs; a checkpoint belongs to one: verify its file(s)")
    rc = EXIT_OK
    for files in groups:
        t0 = time.perf_counter()
        res = verify(files, public_keys=keys, checkpoint=cp, checkpoint_trusted=trusted,
                     segment=args.segment, strict=args.strict)
        took = time.perf_counter() - t0
        if res.ok:
            if not args.quiet:
                print(f"{res.summary()}; verified in {took:.2f}s")
        else:
            print(res.summary(), file=sys.stderr)
            rc = EXIT_TAMPERED
    return rc


def _append(args) -> int:
    details = None
    if args.details:
        try:
            details = json.loads(args.details)
        except ValueError as e:
            raise UsageError(f"--details is not JSON: {e}") from None
        if not isinstance(details, dict):
            raise UsageError("--details must be a JSON object")
    if args.strict_action and args.action not in KNOWN_ACTIONS:
        raise UsageError(f"--action {args.action!r} is not a documented act")
    if args.action == Act.AUDIT_CHECKPOINT.value:
        raise UsageError("checkpoint records are written by the log itself")
    if args.checkpoint_every < 1:
        raise UsageError("--checkpoint-every must be at least 1")
    try:
        log = AuditLog(args.path, signing_key=args.signing_key, checkpoint_every=args.checkpoint_every)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot open the log: {e}") from None
    try:
        rec = log.record(args.actor, args.action, target=args.target, permit=args.permit,
                         dataset=args.dataset, outcome=args.outcome, details=details)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except AuditError as e:
        print(f"spe-audit append: {e}", file=sys.stderr)
        return EXIT_TAMPERED
    finally:
        log.close(checkpoint=False)  # one-shot: checkpoints only at every N-th record
    print(f"seq {rec.seq} hash {rec.hash}")
    return EXIT_OK


_COLUMNS = [("seq", 7), ("time", 20), ("actor", 22), ("action", 18), ("target", 30), ("permit", 14),
            ("dataset", 14), ("outcome", 7)]


def _show(args) -> int:
    if not Path(args.path).exists():
        raise UsageError(f"{args.path}: no such file or directory")
    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as e:
        raise UsageError(f"bad time: {e}") from None
    out = sys.stdout
    if not args.json:
        out.write(_row({c: c.upper() for c, _ in _COLUMNS}) + "\n")
    bad = 0
    for files in log_groups(args.path):
        for f in files:
            for n, line in enumerate(Path(f).read_bytes().splitlines(), 1):
                try:
                    r = parse_line(line)
                except MalformedRecord as e:
                    bad += 1
                    print(f"{f}:{n}: skipped, {e}", file=sys.stderr)
                    continue
                if not _match(r, args, since, until):
                    continue
                out.write((json.dumps(r, ensure_ascii=False) if args.json else _row(r)) + "\n")
    if bad:
        print(f"{bad} malformed line(s); run 'spe-audit verify {args.path}'", file=sys.stderr)
    return EXIT_OK


def _match(r: dict, args, since, until) -> bool:
    if r["action"] == Act.AUDIT_CHECKPOINT.value and not args.checkpoints:
        return False
    for key in ("permit", "actor", "dataset", "outcome"):
        want = getattr(args, key)
        if want is not None and r[key] != want:
            return False
    if args.action and not (r["action"] == args.action or
                            (args.action.endswith(".") and r["action"].startswith(args.action))):
        return False
    if since or until:
        try:
            t = parse_time(r["time"])
        except (ValueError, TypeError, AttributeError):
            return False
        if (since and t < since) or (until and t >= until):
            return False
    return True


def _row(r: dict) -> str:
    cells = []
    for col, width in _COLUMNS:
        v = r.get(col)
        s = "-" if v is None else str(v)
        if col == "time" and len(s) > 20:
            s = s[:19] + "Z"
        if len(s) > width:
            s = s[:width - 1] + "…"
        cells.append(s.ljust(width))
    return "  ".join(cells).rstrip()


def _keygen(args) -> int:
    try:
        kid = generate_keypair(args.private_key, args.public_key)
    except FileExistsError:
        raise UsageError(f"{args.private_key} exists; refusing to overwrite a key") from None
    except OSError as e:
        raise UsageError(str(e)) from None
    print(f"key id {kid}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
