"""Executors run the same stage functions in-process (`local`) or on Ray (`ray`); `auto` picks
one of them once the inputs are planned (`choose_executor`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from siftline.config import ExecutorConfig
from siftline.executors.base import Executor
from siftline.executors.local import LocalExecutor
from siftline.io.split import Split, input_bytes

COMPRESSION_RATIO = 4  # a compressed JSON Lines file counts this many times its size (text)


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor a job runs on, and why: said once in the run's output and kept in
    stats.json (`executor`) and the manifest (`executor.chosen`, `executor.reason`)."""

    kind: Literal["local", "ray"]
    reason: str
    auto: bool = False  # picked by `executor.kind: auto` (the run says so), not configured

    def message(self) -> str:
        return f"executor auto: {self.kind} ({self.reason})"


def planned_bytes(splits: Sequence[Split]) -> int:
    """The planned input's size for `auto`: each split's bytes, a compressed JSON Lines file at
    COMPRESSION_RATIO times its size (it is one split, read whole, uncompressed)."""
    sizes = input_bytes(list(splits))
    return sum(size * COMPRESSION_RATIO if split.format == "jsonl" and split.compression
               else size for split, size in ((s, sizes[s.index]) for s in splits))


def choose_executor(config: ExecutorConfig, splits: int, nbytes: int,
                    gpus: float = 0.0) -> ExecutorChoice:
    """`local` or `ray` for a planned job of `splits` splits and `nbytes` input bytes.

    `auto` runs in-process when Ray could not pay for its start-up (~10 s): one split (one task
    at a time whatever the pool) or input below `auto_local_bytes`; it takes Ray for a cluster
    (`ray_address`), GPU scoring actors (`gpus` > 0), and bigger jobs. Both write the same
    bytes, so the choice changes only the time a job takes."""
    if config.kind != "auto":
        return ExecutorChoice(config.kind, f"executor.kind: {config.kind}")
    size = f"{_splits(splits)}, {_size(nbytes)}"
    if config.ray_address:
        return ExecutorChoice("ray", f"{size}; executor.ray_address joins a cluster", True)
    if gpus > 0:
        return ExecutorChoice("ray", f"{size}; GPU scoring actors ({gpus:g} GPU each)", True)
    if splits <= 1:
        return ExecutorChoice("local", f"{size}; Ray's start-up would dominate", True)
    if nbytes < config.auto_local_bytes:
        return ExecutorChoice("local", f"{size}, below executor.auto_local_bytes "
                              f"{_size(config.auto_local_bytes)}; Ray's start-up would "
                              "dominate", True)
    return ExecutorChoice("ray", f"{size}, at least executor.auto_local_bytes "
                          f"{_size(config.auto_local_bytes)}: split across Ray workers", True)


def _splits(count: int) -> str:
    return f"{count} split" + ("" if count == 1 else "s")


def _size(nbytes: int) -> str:
    """Decimal units, as the config's sizes (`64MB` is 64,000,000 bytes)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{nbytes} B"


def make_executor(config: ExecutorConfig, choice: ExecutorChoice | None = None) -> Executor:
    """The executor `choice` names (else `config.kind`; `auto` without a choice: Ray, the
    choice for a job whose size is not known)."""
    kind = choice.kind if choice is not None else config.kind
    if kind == "local":
        return LocalExecutor()
    from siftline.executors.ray_executor import RayExecutor

    return RayExecutor(address=config.ray_address, num_workers=config.num_workers,
                       object_store_mb=config.object_store_mb)


__all__ = ["COMPRESSION_RATIO", "Executor", "ExecutorChoice", "LocalExecutor",
           "choose_executor", "make_executor", "planned_bytes"]
