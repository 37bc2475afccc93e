"""Run ``spe-operator run`` under cProfile; SIGTERM stops it and writes the profile (bench --profile)."""

from __future__ import annotations

import cProfile
import signal
import sys


def main() -> int:
    out = sys.argv[1]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from spe_operator.cli import main as cli  # noqa: PLC0415
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        cli(["run"])
    except KeyboardInterrupt:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
