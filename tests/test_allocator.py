"""The allocator setting applies once per process and is harmless where glibc is absent."""

from __future__ import annotations

import ctypes
import sys

import pytest

from pipeline.executors import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_accepts_the_mmap_threshold() -> None:
    allocator.keep_large_buffers.cache_clear()
    assert allocator.keep_large_buffers() is True


def test_without_mallopt_nothing_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(*_args: object, **_kwargs: object) -> ctypes.CDLL:
        raise OSError("no libc here")

    allocator.keep_large_buffers.cache_clear()
    monkeypatch.setattr(allocator.ctypes, "CDLL", no_libc)
    assert allocator.keep_large_buffers() is False
    allocator.keep_large_buffers.cache_clear()
