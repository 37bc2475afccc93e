"""Hand the heap that Python has freed back to the kernel, now and then.

At thousands of Workspaces the operator's allocations come in bursts (a watch re-list, a wave of
status writes). glibc keeps what such a burst freed for later use, so the process's RSS stays at
the burst's peak: the bench census (``bench/operator/run.py --census``) found 24 MiB of the 297
at 5,000 workspaces was freed memory still held. ``malloc_trim`` returns it. It is a no-op on a
C library without it (musl): the operator then simply keeps what it holds.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def glibc_trim() -> Callable[[], bool] | None:
    """``malloc_trim(0)`` of the running C library, or None where it has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: bool(trim(0))


async def trim_periodically(interval: float, trim: Callable[[], bool] | None = None) -> None:
    """Call ``trim`` every ``interval`` seconds until cancelled (returns at once if there is none)."""
    trim = trim if trim is not None else glibc_trim()
    if trim is None or interval <= 0:
        log.debug("no periodic heap trim (interval %s, C library without malloc_trim: %s)", interval, trim is None)
        return
    while True:
        await asyncio.sleep(interval)
        trim()
