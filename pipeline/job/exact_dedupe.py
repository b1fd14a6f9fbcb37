"""Phase 2, global: exact-duplicate clustering as a shuffle through files.

map (per part): bucket the in-play keys of a staged part -> one Arrow file, a batch per bucket.
reduce (per bucket): read that bucket's batch from every map file -> duplicates -> one Arrow
file, a batch per part. Finalize then reads its part's batch from every reduce file. Nothing
ever holds all hashes at once, files make every step resumable, and the result does not depend
on the number of buckets. The files are scratch, written without fsync: a resumed run redoes
one that a power cut left short (`ipc_whole`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.executors import Executor
from siftline.io.storage import Storage
from siftline.io.writers import ipc_whole, read_ipc, read_ipc_batch, write_ipc
from siftline.layout import Layout
from siftline.stages.exact_dedupe import (
    DUP_SCHEMA,
    HASH_COLUMN,
    KEY_SCHEMA,
    REP_COLUMN,
    bucket_keys,
    duplicates_in_bucket,
)

STEP = "exact"


@dataclass(frozen=True)
class ShuffleTask:
    layout: Layout
    storage: Storage
    parts: int
    buckets: int

    def gather(self, step: str, bucket: int) -> pa.Table:
        """Reduce input: batch `bucket` of every part's map file for `step`."""
        return pa.concat_tables(
            [read_ipc_batch(self.storage, self.layout.shuffle_map(step, p), bucket)
             for p in range(self.parts)]
        )


def _map(task: ShuffleTask, part: int) -> None:
    out = task.layout.shuffle_map(STEP, part)
    if ipc_whole(task.storage, out, batches=task.buckets):
        return
    table = read_ipc(task.storage, task.layout.stage(part))
    table = table.select(["id", "drop_reason", HASH_COLUMN])
    write_ipc(task.storage, out, bucket_keys(table, part, task.buckets), KEY_SCHEMA,
              durable=False)


def _reduce(task: ShuffleTask, bucket: int) -> None:
    out = task.layout.shuffle_reduce(STEP, bucket)
    if ipc_whole(task.storage, out, batches=task.parts):
        return
    dups = duplicates_in_bucket(task.gather(STEP, bucket))
    parts = dups.column("part").to_numpy()
    per_part = []
    for p in range(task.parts):
        lo, hi = parts.searchsorted(p, "left"), parts.searchsorted(p, "right")
        per_part.append(dups.slice(lo, hi - lo))
    write_ipc(task.storage, out, per_part, DUP_SCHEMA, durable=False)


def run_exact_dedupe(
    executor: Executor, layout: Layout, storage: Storage, parts: int, buckets: int, progress=None
) -> None:
    task = ShuffleTask(layout, storage, parts, buckets)
    executor.map(partial(_map, task), list(range(parts)), progress=progress)
    executor.map(partial(_reduce, task), list(range(buckets)), progress=progress)


def attach_exact_rep(table: pa.Table, layout: Layout, storage: Storage, part: int,
                     buckets: int) -> pa.Table:
    """Add `exact_rep` (the kept copy's id) to a staged part; null for representatives."""
    dups = pa.concat_tables(
        [read_ipc_batch(storage, layout.shuffle_reduce(STEP, b), part) for b in range(buckets)]
    )
    which = np.full(table.num_rows, -1, np.int64)  # row -> its entry in dups, or -1
    which[dups.column("row").to_numpy()] = np.arange(dups.num_rows)
    index = pa.array(which, mask=which < 0)
    return table.append_column(REP_COLUMN, pc.take(dups.column(REP_COLUMN), index))
