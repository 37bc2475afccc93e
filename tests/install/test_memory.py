"""The operator's periodic return of freed heap (spe_operator.memory)."""

from __future__ import annotations

import asyncio
import ctypes

import pytest

from spe_operator.memory import glibc_trim, trim_periodically
from spe_operator.settings import SpeSettings

pytestmark = pytest.mark.install


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_glibc_trim_returns_freed_heap_to_the_kernel():
    trim = glibc_trim()
    assert trim is not None, "this machine's C library is glibc: malloc_trim must be found"
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    # 64 MiB of small blocks (below the mmap threshold: they live in the heap), all touched, then freed
    # except the last one, which pins the heap's top so that only a trim inside the heap can give
    # the rest back.
    blocks = [libc.malloc(64 * 1024) for _ in range(1024)]
    for block in blocks:
        libc.memset(block, 1, 64 * 1024)
    for block in blocks[:-1]:
        libc.free(block)
    held = _rss_kib()
    assert trim() is True
    trimmed = _rss_kib()
    libc.free(blocks[-1])
    assert held - trimmed > 32 * 1024, f"RSS {held} KiB before the trim, {trimmed} KiB after"


def test_trim_runs_every_interval_until_cancelled():
    calls: list[float] = []

    async def scenario():
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(trim_periodically(0.05, trim=lambda: calls.append(loop.time()) or True))
        await asyncio.sleep(0.28)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert 4 <= len(calls) <= 6
    assert all(later - earlier >= 0.04 for earlier, later in zip(calls, calls[1:]))


def test_trim_off_returns_at_once():
    asyncio.run(asyncio.wait_for(trim_periodically(0, trim=lambda: pytest.fail("trimmed with interval 0")), 1))


def test_setting_defaults_to_a_minute_and_refuses_negative():
    assert SpeSettings().memory_trim_interval == 60.0
    with pytest.raises(ValueError, match="memory_trim_interval"):
        SpeSettings(memory_trim_interval=-1)
