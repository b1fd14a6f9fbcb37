"""Ray executor: a pool of warm worker actors, one per CPU, shared by every phase of a job.

Phases that hold a model on a GPU (`map(..., gpus=share)`) get their own pool of actors that
each reserve that share of a GPU (and no CPU), as many as fit on the nodes, built on first use.

With no address it starts an embedded single-machine Ray, quietly and bound to 127.0.0.1; with
one (`auto`, `ray://…`, `host:port`) it joins that cluster. Failures inside a task are re-raised
in the driver as the original exception, not as a Ray traceback. A pool the cluster cannot host
(more CPU workers than it has CPUs, a GPU share no node has) fails at once instead of waiting,
unless the cluster was joined by address: that one may autoscale, so it warns and waits.

The embedded Ray's object store is bounded (`executor.object_store_mb`, 512 MB by default):
tasks pass only small records through Ray, the data goes through files. A phase's function and
setup are fetched by each worker once per phase, not unpickled with every task.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from siftline.errors import ConfigError
from siftline.executors.base import Executor, OnResult, Progress
from siftline.executors.memory import peak_rss_mb, reset_peak

T = TypeVar("T")
R = TypeVar("R")
MAX_RETRIES = 3
DEFAULT_OBJECT_STORE_MB = 512


class ClusterTooSmall(ConfigError):
    """The Ray cluster cannot host the requested pool: fail now rather than wait forever (a
    ConfigError, so the CLI reports it and exits 2)."""


def _quiet_local_env() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")


def _plain_worker_lines() -> None:
    """Where the driver's output is a log file (a batch job), the worker lines Ray forwards get
    no ANSI colour in their `(_Worker pid=…)` prefix and are flushed as they come, so they sit
    next to siftline's own timestamped lines instead of a buffer later. Ray reads the colour
    setting as it prints, the flush one when it is first imported; a user's setting wins."""
    streams = (sys.stdout, sys.stderr)
    if not all(hasattr(s, "isatty") and s.isatty() for s in streams):
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        os.environ.setdefault("RAY_FLUSH_DRIVER_LOGS", "1")


@contextlib.contextmanager
def _own_sigterm_handler() -> Iterator[None]:
    """Keep the process's SIGTERM handler across ray.init, which replaces it twice: with its own
    (`sys.exit(signum)`) and then, in C++, with a failure handler that prints a stack dump
    (`*** SIGTERM received ...`), which a user who stops the job (`timeout`, Slurm, Kubernetes)
    reads as a crash (`_driver_without_failure_handler` keeps that one out where it can); and
    across ray.shutdown, which leaves the default. SIGTERM does what it did before: the CLI's
    clean stop (cli/interrupts.py), or the default, ending the process without a dump."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    except SystemExit as exc:  # Ray's own handler ran while ray.init did: pass the signal on
        if exc.code == signal.SIGTERM and callable(handler):
            handler(signal.SIGTERM, None)
        raise
    finally:
        if handler is not None:  # None: not set from Python, so nothing to put back
            signal.signal(signal.SIGTERM, handler)


def _driver_without_failure_handler() -> dict[str, str]:
    """No C++ failure handler in this process (it is read when ray is first imported), so
    SIGTERM before `_own_sigterm_handler` puts the process's own back prints no stack dump;
    returns the env_vars that keep the workers' setting (their crash dumps go to their logs)."""
    name = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"
    workers = os.environ.get(name, "0")
    os.environ.setdefault(name, "1")
    return {name: workers}


class _Worker:
    """One per Ray worker process, kept warm across phases; holds the current phase's function
    and state, fetched when the phase's first task reaches this worker."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.fn: Callable[..., Any] | None = None
        self.stateful = False
        self.state: Any = None

    def warm(self, fn: Callable[[], Any]) -> None:
        fn()

    def run(self, refs: list[Any], item: Any, key: str) -> tuple[Any, float]:
        """`refs` is [function, setup or None] as object refs, nested so that Ray does not
        resolve them for every task; returns the result and this process's phase peak RSS."""
        if key != self.key:
            self._enter_phase(refs, key)
        assert self.fn is not None
        result = self.fn(self.state, item) if self.stateful else self.fn(item)
        return result, peak_rss_mb()

    def _enter_phase(self, refs: list[Any], key: str) -> None:
        import ray

        self.key, self.fn, self.state = None, None, None  # the last phase's state goes first
        reset_peak()
        fn_ref, setup_ref = refs
        self.fn, self.stateful = ray.get(fn_ref), setup_ref is not None
        self.state = ray.get(setup_ref)() if setup_ref is not None else None
        self.key = key


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

    def __init__(self, address: str | None = None, num_workers: int | None = None,
                 object_store_mb: int | None = None) -> None:
        _plain_worker_lines()
        worker_env = _driver_without_failure_handler()
        import ray

        self._ray = ray
        self._owns_ray = False
        # A cluster joined by address may autoscale: a pool it cannot host yet is waited for
        # (with a warning); anything else (the embedded Ray, or one the caller started) fails.
        self._can_grow = bool(address)
        if not ray.is_initialized():
            package_root = str(Path(__file__).resolve().parents[2])
            pythonpath = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.WARNING,
                "log_to_driver": True,
                "runtime_env": {"env_vars": {"PYTHONPATH": pythonpath, **worker_env}},
            }
            with _own_sigterm_handler():
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    _quiet_local_env()
                    # address="local": always a fresh embedded instance, never whatever Ray
                    # cluster runs on this machine (ray.init would otherwise try to join it).
                    store_mb = object_store_mb or DEFAULT_OBJECT_STORE_MB
                    ray.init(address="local", num_cpus=num_workers or os.cpu_count() or 1,
                             object_store_memory=store_mb * 10**6,
                             _node_ip_address="127.0.0.1", **kwargs)
            self._owns_ray = True
        self._gpu_pools: dict[float, list[Any]] = {}
        self._actors: list[Any] = []
        try:
            cpus = self._capacity("CPU", 1)
            self.num_workers = num_workers or max(1, cpus)
            if self.num_workers > cpus:
                self._too_small(
                    f"executor.num_workers: the pool needs {self.num_workers} worker(s) of one "
                    f"CPU each but the Ray cluster's nodes hold {cpus}; lower num_workers or "
                    f"add nodes")
            self._actors = self._make_pool(self.num_workers, gpus=0)
        except BaseException:
            self.close()
            raise

    def _capacity(self, resource: str, per_worker: float) -> int:
        """How many workers asking `per_worker` of `resource` fit on the cluster's live nodes
        (a worker cannot span nodes), in Ray's units of 1/10,000 of a resource."""
        need = max(1, round(per_worker * 10_000))
        return sum(round(node["Resources"].get(resource, 0) * 10_000) // need
                   for node in self._ray.nodes() if node.get("Alive"))

    def _too_small(self, message: str) -> None:
        if not self._can_grow:
            raise ClusterTooSmall(message)
        warnings.warn(f"{message}; waiting for the cluster to add nodes", RuntimeWarning,
                      stacklevel=3)

    def _make_pool(self, size: int, gpus: float) -> list[Any]:
        # A GPU actor reserves no CPU: phases run one at a time, so it uses the CPUs that the
        # idle CPU pool holds (which by default is every CPU, and would leave it unplaceable).
        actor_cls = self._ray.remote(num_cpus=0 if gpus else 1, num_gpus=gpus,
                                     max_restarts=MAX_RETRIES,
                                     max_task_retries=MAX_RETRIES)(_Worker)
        return [actor_cls.remote() for _ in range(size)]

    def _pool(self, gpus: float) -> list[Any]:
        if gpus <= 0:
            return self._actors
        if gpus not in self._gpu_pools:
            size = self._capacity("GPU", gpus)
            if size < 1:
                most = max((node["Resources"].get("GPU", 0) for node in self._ray.nodes()
                            if node.get("Alive")), default=0)
                self._too_small(f"a phase asks for {gpus} GPU per worker but no node of the "
                                f"Ray cluster has that many (the most on one node: {most:g} GPU)")
            self._gpu_pools[gpus] = self._make_pool(max(size, 1), gpus)
        return self._gpu_pools[gpus]

    def warm_up(self, fn: Callable[[], Any]) -> bool:
        fn_ref = self._ray.put(fn)
        for ref in [actor.warm.remote(fn_ref) for actor in self._actors]:
            self._get(ref)
        return True

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
        ray = self._ray
        refs = [ray.put(fn), ray.put(setup) if setup is not None else None]
        key = uuid.uuid4().hex
        results: list[Any] = [None] * len(items)
        pending: dict[Any, tuple[int, Any]] = {}
        pool = self._pool(gpus)
        free = list(pool)
        todo = list(range(len(items)))[::-1]  # popped from the end: item order
        lost = LostWork(len(items), pool)
        done, peak = 0, 0.0
        while done < len(items):
            while todo and free:
                index, actor = todo.pop(), free.pop()
                ref = actor.run.remote(refs, items[index], key)
                pending[ref] = (index, actor)
            ready, _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(ready[0])
            try:
                results[index], task_peak = self._get(ready[0])
            except ray.exceptions.RayActorError as err:
                # The worker (or its node) was lost mid-task: run the item again, on the
                # restarted actor or another one. Outputs are exactly-once, so a task that
                # had already written files rewrites the same bytes under the same names.
                if lost.actor_still_usable(index, actor, err):
                    free.append(actor)
                todo.append(index)
                continue
            free.append(actor)
            done, peak = done + 1, max(peak, task_peak)
            if on_result:
                on_result(results[index])
            if progress:
                progress(done, len(items))
        self._record_peak(peak)
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
            with _own_sigterm_handler():  # shutting down leaves SIGTERM at the default
                self._ray.shutdown()
