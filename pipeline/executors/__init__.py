"""Executors run the same stage functions in-process (`local`) or on Ray (`ray`)."""

from __future__ import annotations

from siftline.config import ExecutorConfig
from siftline.executors.base import Executor
from siftline.executors.local import LocalExecutor


def make_executor(config: ExecutorConfig) -> Executor:
    if config.kind == "local":
        return LocalExecutor()
    from siftline.executors.ray_executor import RayExecutor

    return RayExecutor(address=config.ray_address, num_workers=config.num_workers,
                       object_store_mb=config.object_store_mb)


__all__ = ["Executor", "LocalExecutor", "make_executor"]
