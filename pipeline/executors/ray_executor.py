"""Ray executor: a pool of warm worker actors, one per CPU, shared by every phase of a job.

Phases that hold a model on a GPU (`map(..., gpus=share)`) get their own pool of actors that
each reserve that share of a GPU, as many as the cluster's GPUs allow, built on first use.

With no address it starts an embedded single-machine Ray, quietly and bound to 127.0.0.1; with
one (`auto`, `ray://…`, `host:port`) it joins that cluster. Failures inside a task are re-raised
in the driver as the original exception, not as a Ray traceback.
"""

from __future__ import annotations

import logging
import os
import uuid
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
    """One per Ray worker process, kept warm across phases; holds the current phase's state."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.state: Any = None

    def run(self, fn: Callable[..., Any], item: Any, key: str | None,
            setup: Callable[[], Any] | None) -> Any:
        if setup is None:
            return fn(item)
        if key != self.key:
            self.key, self.state = key, setup()
        return fn(self.state, item)


class LostWork:
    """Bookkeeping of tasks lost with their worker: how often each item was re-run, and which
    actors failed more often than Ray restarts them (those leave the pool for good)."""

    def __init__(self, n_items: int, pool: list[Any]) -> None:
        self.retries = [0] * n_items
        self.failures: dict[int, int] = {}
        self.pool = pool

    def actor_still_usable(self, index: int, actor: Any, err: BaseException) -> bool:
        self.retries[index] += 1
        if self.retries[index] > MAX_RETRIES:
            raise RuntimeError(f"a task was lost with its worker {self.retries[index]} times; "
                               f"giving up: {err}") from err
        self.failures[id(actor)] = self.failures.get(id(actor), 0) + 1
        if self.failures[id(actor)] <= MAX_RETRIES + 1:
            return True
        self.pool.remove(actor)  # restarts exhausted: the pool shrinks
        if not self.pool:
            raise RuntimeError(f"every Ray worker of this phase was lost: {err}") from err
        return False


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
                # address="local": always a fresh embedded instance, never whatever Ray cluster
                # happens to run on this machine (ray.init would otherwise try to join it).
                ray.init(address="local", num_cpus=num_workers or os.cpu_count() or 1,
                         _node_ip_address="127.0.0.1", **kwargs)
            self._owns_ray = True
        self.num_workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actors = self._make_pool(self.num_workers, gpus=0)
        self._gpu_pools: dict[float, list[Any]] = {}

    def _make_pool(self, size: int, gpus: float) -> list[Any]:
        actor_cls = self._ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=MAX_RETRIES,
                                     max_task_retries=MAX_RETRIES)(_Worker)
        return [actor_cls.remote() for _ in range(size)]

    def _pool(self, gpus: float) -> list[Any]:
        if gpus <= 0:
            return self._actors
        if gpus not in self._gpu_pools:
            total = self._ray.cluster_resources().get("GPU", 0)
            size = int(total // gpus)
            if size < 1:
                raise RuntimeError(f"a phase asks for {gpus} GPU per worker but the Ray "
                                   f"cluster has {total} GPU(s)")
            self._gpu_pools[gpus] = self._make_pool(size, gpus)
        return self._gpu_pools[gpus]

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        setup: Callable[[], Any] | None = None,
        progress: Progress | None = None,
        gpus: float = 0,
    ) -> list[R]:
        if not items:
            return []
        ray = self._ray
        fn_ref = ray.put(fn)
        setup_ref = ray.put(setup) if setup is not None else None
        key = uuid.uuid4().hex
        results: list[Any] = [None] * len(items)
        pending: dict[Any, tuple[int, Any]] = {}
        pool = self._pool(gpus)
        free = list(pool)
        todo = list(range(len(items)))[::-1]  # popped from the end: item order
        lost = LostWork(len(items), pool)
        done = 0
        while done < len(items):
            while todo and free:
                index, actor = todo.pop(), free.pop()
                ref = actor.run.remote(fn_ref, items[index], key, setup_ref)
                pending[ref] = (index, actor)
            ready, _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(ready[0])
            try:
                results[index] = self._get(ready[0])
            except ray.exceptions.RayActorError as err:
                # The worker (or its node) was lost mid-task: run the item again, on the
                # restarted actor or another one. Outputs are exactly-once, so a task that
                # had already written files rewrites the same bytes under the same names.
                if lost.actor_still_usable(index, actor, err):
                    free.append(actor)
                todo.append(index)
                continue
            free.append(actor)
            done += 1
            if progress:
                progress(done, len(items))
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
        for actor in [*self._actors, *(a for pool in self._gpu_pools.values() for a in pool)]:
            self._ray.kill(actor)
        self._actors, self._gpu_pools = [], {}
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
