"""In-process executor: the same stage functions, no Ray — for tests, debugging and tiny jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pipeline.executors.base import Executor, Progress

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor(Executor):
    name = "local"

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        setup: Callable[[], Any] | None = None,
        progress: Progress | None = None,
        gpus: float = 0,
    ) -> list[R]:
        state = setup() if setup is not None and items else None
        results = []
        for done, item in enumerate(items, 1):
            results.append(fn(item) if setup is None else fn(state, item))
            if progress:
                progress(done, len(items))
        return results
