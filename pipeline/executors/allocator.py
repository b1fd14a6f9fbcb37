"""Keep glibc from handing large freed buffers back to the kernel between splits.

Each split allocates a few buffers of tens of MB (blocks of input, the whitespace-collapsed
text, serialised files). glibc serves blocks that large with a fresh `mmap` and returns them
with `munmap` on free until its threshold has adapted, so every split pays page faults to
zero-fill memory it just released: ~10% of a read -> exact-dedupe -> write job on one core
(scripts/bench_throughput.py). Fixing the threshold at glibc's 64-bit maximum (32 MB) keeps
such buffers in the heap for reuse, and a trim threshold of 256 MB keeps glibc from handing
the freed top of the heap back after each split (which made every read of the next block
fault its pages in again: most of a job's page faults). The peak resident memory is
unchanged; only the time to reach it is saved, and a worker between splits holds on to up to
256 MB it has freed. Arrow's own buffers (parsed text, Parquet pages) are routed to the same
glibc heap (`pa.system_memory_pool()`) instead of mimalloc, the default of pyarrow's wheels:
with one heap, what numpy's or Arrow's buffers freed serves the next split's, and a 200 MB job
faulted in ~20 % fewer pages and spent ~35 % less time in the kernel. A pool chosen with
ARROW_DEFAULT_MEMORY_POOL is left alone. Elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import pyarrow as pa

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_large_buffers() -> bool:
    """Apply once per process; True if glibc accepted the settings."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if kept and "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
    return kept
