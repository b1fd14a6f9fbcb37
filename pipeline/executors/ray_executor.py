"""Ray executor: tasks for stateless work, an actor per worker for work that holds state.

With no address it starts an embedded single-machine Ray, quietly and bound to 127.0.0.1; with
one (`auto`, `ray://…`, `host:port`) it joins that cluster. Failures inside a task are re-raised
in the driver as the original exception, not as a Ray traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pipeline.executors.base import Executor, Progress

T = TypeVar("T")
R = TypeVar("R")
MAX_RETRIES = 3


def _quiet_local_env() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")


class _Worker:
    """One per Ray worker process: builds the state once, then serves items."""

    def __init__(self, setup: Callable[[], Any] | None) -> None:
        self.state = setup() if setup is not None else None

    def run(self, fn: Callable[[Any, Any], Any], item: Any) -> Any:
        return fn(self.state, item)


def _run_task(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, num_workers: int | None = None) -> None:
        import ray

        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            package_root = str(Path(__file__).resolve().parents[2])
            pythonpath = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.WARNING,
                "log_to_driver": True,
                "runtime_env": {"env_vars": {"PYTHONPATH": pythonpath}},
            }
            if address:
                ray.init(address=address, **kwargs)
            else:
                _quiet_local_env()
                ray.init(num_cpus=num_workers or os.cpu_count() or 1,
                         _node_ip_address="127.0.0.1", **kwargs)
            self._owns_ray = True
        self.num_workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_run_task)
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=MAX_RETRIES,
                                     max_task_retries=MAX_RETRIES)(_Worker)

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        setup: Callable[[], Any] | None = None,
        progress: Progress | None = None,
    ) -> list[R]:
        if not items:
            return []
        ray = self._ray
        fn_ref = ray.put(fn)
        actors = []
        if setup is not None:
            actors = [self._actor_cls.remote(setup)
                      for _ in range(min(self.num_workers, len(items)))]
        results: list[Any] = [None] * len(items)
        pending: dict[Any, tuple[int, Any]] = {}
        free = list(actors)
        next_item = 0
        done = 0
        limit = len(actors) if actors else 2 * self.num_workers
        try:
            while done < len(items):
                while next_item < len(items) and len(pending) < limit:
                    actor = free.pop() if actors else None
                    item = items[next_item]
                    ref = (actor.run.remote(fn_ref, item) if actor is not None
                           else self._task.remote(fn_ref, item))
                    pending[ref] = (next_item, actor)
                    next_item += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                index, actor = pending.pop(ready[0])
                results[index] = self._get(ready[0])
                if actor is not None:
                    free.append(actor)
                done += 1
                if progress:
                    progress(done, len(items))
        finally:
            for actor in actors:
                ray.kill(actor)
        return results

    def _get(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise

    def close(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
