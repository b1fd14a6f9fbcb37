"""The executor contract: map a function over work items, with per-worker state built once.

`setup` builds what a worker holds for its whole life (a stage chain, later a model); `fn` then
takes that state and one item; without `setup`, `fn` takes the item alone. Results come back in
item order whatever order they finish in, so everything downstream is deterministic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]  # (done, total)


class Executor(ABC):
    name: str

    @abstractmethod
    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        setup: Callable[[], Any] | None = None,
        progress: Progress | None = None,
        gpus: float = 0,
    ) -> list[R]:
        """Apply `fn(item)`, or `fn(state, item)` with `state = setup()` built once per worker.

        `gpus` > 0 asks for that share of a GPU per worker (a model-holding phase); executors
        without GPU scheduling run such phases on their ordinary workers.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers; the default holds none."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
