"""The executor contract: map a function over work items, with per-worker state built once.

`setup` builds what a worker holds for its whole life (a stage chain, later a model); `fn` then
takes that state and one item; without `setup`, `fn` takes the item alone. Results come back in
item order whatever order they finish in, so everything downstream is deterministic.

Each map also measures its workers' peak resident memory (`executors.memory`): the max over the
workers is `last_peak_rss_mb`, and `take_peak_rss_mb` gives the max over the maps of a phase.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]  # (done, total)
OnResult = Callable[[Any], None]  # one finished item's result, in the driver


class Executor(ABC):
    name: str
    in_driver = False  # tasks run in the calling process (so they may leave it work to finish)
    last_peak_rss_mb: float | None = None  # max over workers of the last map call, MB
    _phase_peak_mb: float | None = None

    @abstractmethod
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
        """Apply `fn(item)`, or `fn(state, item)` with `state = setup()` built once per worker.

        `gpus` > 0 asks for that share of a GPU per worker (a model-holding phase); executors
        without GPU scheduling run such phases on their ordinary workers. `on_result` sees each
        result in the driver as it arrives (finishing order), before `progress`: what a phase
        counts while it runs (documents, bytes).
        """

    def warm_up(self, fn: Callable[[], Any]) -> bool:
        """Run `fn` once on every worker before the first phase, so imports and compiled kernels
        are not paid inside a timed phase; returns whether there were workers to warm."""
        return False

    def take_peak_rss_mb(self) -> float | None:
        """The peak over the map calls since the previous take (a phase may map several times)."""
        peak, self._phase_peak_mb = self._phase_peak_mb, None
        return peak

    def _record_peak(self, peak_mb: float) -> None:
        self.last_peak_rss_mb = peak_mb
        self._phase_peak_mb = max(self._phase_peak_mb or 0.0, peak_mb)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers; the default holds none."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
