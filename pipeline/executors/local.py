"""In-process executor: the same stage functions, no Ray — for tests, debugging and tiny jobs.

Its one worker is the driver process, so its peak RSS includes the driver's own state (the
config, the plan, earlier phases' records, the CLI) on top of what the tasks use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from siftline.executors.base import Executor, OnResult, Progress
from siftline.executors.memory import peak_rss_mb, reset_peak

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor(Executor):
    name = "local"
    in_driver = True

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        setup: Callable[[], Any] | None = None,
        progress: Progress | None = None,
        gpus: float = 0,
        on_result: OnResult | None = None,
    ) -> list[R]:
        if not items:
            return []
        reset_peak()
        state = setup() if setup is not None else None
        results = []
        for done, item in enumerate(items, 1):
            results.append(fn(item) if setup is None else fn(state, item))
            if on_result:
                on_result(results[-1])
            if progress:
                progress(done, len(items))
        self._record_peak(peak_rss_mb())
        return results
