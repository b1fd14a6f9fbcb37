"""The allocator setting applies once per process and is harmless where glibc is absent."""

from __future__ import annotations

import ctypes
import sys

import pyarrow as pa
import pytest

from siftline.executors import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_accepts_the_mmap_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    allocator.keep_large_buffers.cache_clear()
    assert allocator.keep_large_buffers() is True
    assert pa.default_memory_pool().backend_name == "system"  # Arrow's buffers in that heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_chosen_arrow_pool_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
    allocator.keep_large_buffers.cache_clear()
    try:
        assert allocator.keep_large_buffers() is True
        assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(before)
        allocator.keep_large_buffers.cache_clear()


def test_without_mallopt_nothing_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(*_args: object, **_kwargs: object) -> ctypes.CDLL:
        raise OSError("no libc here")

    allocator.keep_large_buffers.cache_clear()
    monkeypatch.setattr(allocator.ctypes, "CDLL", no_libc)
    assert allocator.keep_large_buffers() is False
    allocator.keep_large_buffers.cache_clear()
