"""Keep glibc from handing large freed buffers back to the kernel between splits.

Each split allocates a few buffers of tens of MB (blocks of input, the whitespace-collapsed
text, serialised files). glibc serves blocks that large with a fresh `mmap` and returns them
with `munmap` on free until its threshold has adapted, so every split pays page faults to
zero-fill memory it just released: ~10% of a read -> exact-dedupe -> write job on one core
(scripts/bench_throughput.py). Fixing the threshold at glibc's 64-bit maximum (32 MB) keeps
such buffers in the heap for reuse. The peak resident memory is unchanged; only the time to
reach it is saved. Elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit


@functools.cache
def keep_large_buffers() -> bool:
    """Apply once per process; True if glibc accepted the setting."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
