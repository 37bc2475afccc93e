"""Benchmark spe-ingest against dicognito and dicom-anonymizer, side by side.

    .venv/bin/python bench/ingest/run.py [--files 2000] [--workers 2] [--keep]

Builds the corpus once (``corpus.py``), then runs each tool as its own
process on the same corpus, one after the other, timing wall clock from
process start to exit (start-up included) and sampling the resident memory
of the whole process tree (workers included) every 20 ms.  Then it checks
every output for the planted identifiers, file and folder names included.
Results go to ``bench/results/ingest-<timestamp>.json`` and a table is
printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

PY = sys.executable


def _tree_rss(pid: int) -> int:
    """Resident set size (bytes) of pid and all its descendants."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], logdir: Path, name: str) -> dict:
    """Run cmd; wall time, CPU time (the process and the children it reaped,
    i.e. the workers) and the peak resident memory of its process tree."""
    out_path, err_path = logdir / f"{name}.out", logdir / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak = 0
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(proc.pid))
                time.sleep(0.02)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}): {err_path.read_text()[-2000:]}")
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_bytes": peak, "stdout": out_path.read_text()[-300:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--peers", default="dicognito,dicom-anonymizer")
    ap.add_argument("--spe-option", action="append", default=[], metavar="OPTION",
                    help="an --option for spe-ingest (repeatable), e.g. clean-pixel-data")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spe-ingest-bench-"))
    src = work / "src"
    t0 = time.perf_counter()
    corpus.build(src, args.files)
    build_s = time.perf_counter() - t0
    key = work / "key"
    key.write_bytes(os.urandom(64))
    planted = corpus.planted(src)

    runs = {}
    spe = REPO / ".venv" / "bin" / "spe-ingest"
    spe_cmd = [str(spe) if spe.exists() else "spe-ingest", "run", str(src), str(work / "spe"),
               "--key-file", str(key), "--site", "BENCH", "--project", "BENCH",
               "--workers", str(args.workers)]
    for option in args.spe_option:
        spe_cmd += ["--option", option]
    runs["spe-ingest"] = measure(spe_cmd, work, "spe-ingest")
    for peer in [p for p in args.peers.split(",") if p]:
        runs[peer] = measure([PY, str(HERE / "peers.py"), peer, str(src), str(work / peer)],
                             work, peer)
    for name, res in runs.items():
        out = work / ("spe" if name == "spe-ingest" else name)
        n_out = sum(1 for p in out.rglob("*.dcm"))
        res["files_in"] = args.files
        res["files_out"] = n_out
        res["files_per_second"] = args.files / res["seconds"]
        res["files_per_cpu_second"] = args.files / res["cpu_seconds"]
        found = corpus.leaks(out, planted)
        res["leaked_identifiers"] = len(found)
        res["leak_examples"] = sorted(found)[:5]
    report = json.loads((work / "spe" / "report.json").read_text())
    peers = [r for n, r in runs.items() if n != "spe-ingest"]
    fastest_peer = max((r["files_per_second"] for r in peers), default=0)
    leanest_peer = max((r["files_per_cpu_second"] for r in peers), default=0)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": os.getloadavg()},
        "corpus": {"files": args.files, "build_seconds": round(build_s, 1)},
        "workers": args.workers,
        "spe_options": args.spe_option,
        "runs": runs,
        "spe_ingest_report_counts": report["counts"],
        "machine_after": {"loadavg": os.getloadavg()},
        "ratio_vs_fastest_peer": (runs["spe-ingest"]["files_per_second"] / fastest_peer
                                  if fastest_peer else None),
        "cpu_ratio_vs_leanest_peer": (runs["spe-ingest"]["files_per_cpu_second"] / leanest_peer
                                      if leanest_peer else None),
    }
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))

    spe = runs["spe-ingest"]
    print(f"corpus: {args.files} files, spe-ingest --workers {args.workers}, "
          f"{os.cpu_count()} CPUs, load average before {result['machine']['loadavg_before'][0]:.1f}"
          f", after {os.getloadavg()[0]:.1f}")
    print(f"{'tool':17} {'wall s':>7} {'files/s':>8} {'ratio':>6} {'CPU s':>7} "
          f"{'files/CPU-s':>11} {'ratio':>6} {'peak RSS MiB':>12} {'leaked ids':>10}")
    for name, r in runs.items():
        ratio = "-" if r is spe else f"{spe['files_per_second'] / r['files_per_second']:.1f}x"
        cratio = "-" if r is spe else \
            f"{spe['files_per_cpu_second'] / r['files_per_cpu_second']:.1f}x"
        print(f"{name:17} {r['seconds']:7.2f} {r['files_per_second']:8.0f} {ratio:>6} "
              f"{r['cpu_seconds']:7.2f} {r['files_per_cpu_second']:11.0f} {cratio:>6} "
              f"{r['peak_rss_bytes'] / 2**20:12.0f} {r['leaked_identifiers']:10d}")
    print("ratio: how many times more files per second (wall) / per CPU-second spe-ingest "
          "processes than that tool")
    print(f"results: {path}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")
    return 0 if runs["spe-ingest"]["leaked_identifiers"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
