"""Run ``spe-operator run`` exactly as deployed, counting every API request it makes.

    python bench/operator/instrumented.py --counts FILE [--profile FILE]

Every HTTP request of the process (the operator's own client and Kopf's) goes through
``aiohttp.ClientSession._request``; this wraps it and counts requests by verb and resource
(``GET`` of a collection is a list, with ``watch=`` a watch). SIGUSR1 writes the counts so far
to ``--counts`` (JSON), so the benchmark can take differences around each phase; SIGTERM stops
the operator (and writes the cProfile stats when ``--profile`` is given). SIGUSR2 writes
``FILE.census.json``: the live objects by type (count and shallow bytes), the asyncio tasks and
the RSS, then the RSS after a full collection and after glibc's ``malloc_trim`` (what of it is
freed memory still held), to see where the operator's memory goes (seconds at scale).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import signal
import sys
from collections import Counter
from urllib.parse import parse_qs, urlsplit

COUNTS: Counter[str] = Counter()


def classify(method: str, url: str) -> str:
    """``VERB resource[/subresource]``: e.g. ``PATCH workspaces/status``, ``LIST pods``, ``WATCH pods``."""
    parts = urlsplit(str(url))
    segs = [s for s in parts.path.split("/") if s]
    # /api/v1/... or /apis/group/version/...; then [namespaces/ns/]resource[/name[/sub]]
    if segs[:1] == ["api"]:
        rest = segs[2:]
    elif segs[:1] == ["apis"]:
        rest = segs[3:]
    else:
        return f"{method} {parts.path}"
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        rest = rest[2:]
    if not rest:
        return f"{method} discovery"
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    verb = method.upper()
    if verb == "GET" and name is None:
        query = parse_qs(parts.query)
        verb = "WATCH" if query.get("watch", ["0"])[0] in ("1", "true") else "LIST"
    return f"{verb} {resource}{'/' + sub if sub else ''}"


def instrument() -> None:
    import aiohttp  # noqa: PLC0415

    original = aiohttp.ClientSession._request

    async def counted(self, method, str_or_url, *args, **kwargs):  # noqa: ANN001
        url = str(str_or_url)
        params = kwargs.get("params")
        if params:
            url += ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in dict(params).items())
        COUNTS[classify(method, url)] += 1
        return await original(self, method, str_or_url, *args, **kwargs)

    aiohttp.ClientSession._request = counted


def _rss() -> int:
    with open("/proc/self/status") as fh:
        return next((int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:")), 0)


def census(top: int = 40) -> dict:
    """Live objects by type: how many, and their shallow size (containers without their items)."""
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj, 0)
    try:
        tasks = len(asyncio.all_tasks(asyncio.get_event_loop()))
    except RuntimeError:
        tasks = None
    rss = _rss()
    # How much of the RSS is memory the process no longer uses but still holds: what a full
    # collection frees, then what glibc gives back to the kernel when asked (malloc_trim).
    gc.collect()
    after_gc = _rss()
    from spe_operator.memory import glibc_trim  # noqa: PLC0415 - the operator's own trim, as it runs it

    trim = glibc_trim()
    if trim is not None:
        trim()
    after_trim = _rss()
    return {"rss_mib": round(rss / 2**20, 1), "rss_after_gc_mib": round(after_gc / 2**20, 1),
            "rss_after_malloc_trim_mib": round(after_trim / 2**20, 1),
            "asyncio_tasks": tasks, "gc_objects": sum(counts.values()),
            "by_bytes": [{"type": t, "count": counts[t], "mib": round(b / 2**20, 2)} for t, b in sizes.most_common(top)],
            "by_count": [{"type": t, "count": c} for t, c in counts.most_common(top)]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", required=True)
    parser.add_argument("--profile")
    args = parser.parse_args()

    def write(path: str, data: object) -> None:
        with open(path + ".tmp", "w") as fh:
            json.dump(data, fh)
        os.replace(path + ".tmp", path)

    def dump(*_: object) -> None:
        write(args.counts, dict(COUNTS))

    instrument()
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, lambda *_: write(args.counts + ".census.json", census()))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from spe_operator.cli import main as cli  # noqa: PLC0415
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    try:
        cli(["run"])
    except KeyboardInterrupt:
        pass
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
