"""Exact-duplicate clustering: keep the smallest (id, part, row) of each normalised-text hash.

The stage (`siftline.stages.exact_dedupe`) adds each row's `exact_hash`
(`siftline.dedupe.normalize`); after scoring, a shuffle through files finds the duplicates:

  map (per part)       `bucket_keys`: the (hash, id, part, row) keys of in-play rows, split into
                       buckets by hash -> one Arrow file, a batch per bucket
  reduce (per bucket)  `duplicates_in_bucket`: within each hash group, every row but the one
                       with the smallest (id, part, row) is a duplicate -> one Arrow file, a
                       batch per part
  attach (per part)    `attach_exact_rep`: `exact_rep` = the kept copy's id (null for it)

Nothing ever holds all hashes at once, files make every step resumable, and the result does not
depend on the number of buckets. The files are scratch, written without fsync: a resumed run
redoes one that a power cut left short (`ipc_whole`).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.dedupe.normalize import HASH_TYPE
from siftline.dedupe.shuffle import ShuffleTask
from siftline.documents import active_mask
from siftline.executors.base import Executor, Progress
from siftline.io.storage import Storage
from siftline.io.writers import ipc_whole, read_ipc, read_ipc_batch, write_ipc
from siftline.layout import Layout

HASH_COLUMN = "exact_hash"
REP_COLUMN = "exact_rep"
KEY_SCHEMA = pa.schema(
    [("hash", HASH_TYPE), ("id", pa.string()), ("part", pa.int32()), ("row", pa.int64())]
)
DUP_SCHEMA = pa.schema([("part", pa.int32()), ("row", pa.int64()), (REP_COLUMN, pa.string())])


def bucket_keys(table: pa.Table, part: int, buckets: int) -> list[pa.Table]:
    """Map side of the shuffle: keys of in-play rows, split by the hash's leading 8 bytes."""
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    keys = pa.Table.from_arrays(
        [
            table.column(HASH_COLUMN),
            table.column("id"),
            pa.array(np.full(table.num_rows, part, np.int32)),
            rows,
        ],
        schema=KEY_SCHEMA,
    ).filter(active_mask(table))
    if keys.num_rows == 0:
        return [KEY_SCHEMA.empty_table() for _ in range(buckets)]
    bucket_of = _hash_words(keys.column("hash"))[:, 0] % np.uint64(buckets)
    order = np.argsort(bucket_of, kind="stable")  # one take, then a slice per bucket
    ends = np.searchsorted(bucket_of[order], np.arange(1, buckets + 1, dtype=np.uint64))
    ranked = keys.take(pa.array(order))
    return [ranked.slice(a, b - a) for a, b in zip([0, *ends[:-1].tolist()], ends.tolist(),
                                                   strict=True)]


def duplicates_in_bucket(keys: pa.Table) -> pa.Table:
    """Reduce side: every row whose hash group has a smaller (id, part, row) is a duplicate."""
    if keys.num_rows:
        keys = keys.filter(pa.array(_hash_shared(keys.column("hash"))))
    if keys.num_rows == 0:
        return DUP_SCHEMA.empty_table()
    order = pc.sort_indices(
        keys,
        sort_keys=[("hash", "ascending"), ("id", "ascending"), ("part", "ascending"),
                   ("row", "ascending")],
    )
    ranked = keys.take(order)
    words = _hash_words(ranked.column("hash"))
    first = np.ones(ranked.num_rows, bool)
    first[1:] = np.any(words[1:] != words[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(first, np.arange(ranked.num_rows), 0))
    reps = pc.take(ranked.column("id"), pa.array(group_start))
    dups = pa.Table.from_arrays(
        [ranked.column("part"), ranked.column("row"), reps], schema=DUP_SCHEMA
    ).filter(pa.array(~first))
    return dups.sort_by([("part", "ascending"), ("row", "ascending")])


def _hash_shared(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Which rows have a hash some other row has too: most have none, and only the rest need
    the sort by (hash, id, part, row), which compares strings."""
    words = _hash_words(column)
    order = np.lexsort((words[:, 1], words[:, 0]))
    ranked = words[order]
    same = np.all(ranked[1:] == ranked[:-1], axis=1)
    shared = np.zeros(len(order), bool)
    shared[1:] |= same
    shared[:-1] |= same
    mask = np.empty(len(order), bool)
    mask[order] = shared
    return mask


def _hash_words(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The 16-byte hashes as an (n, 2) uint64 array, for vectorised comparisons."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    words = np.frombuffer(array.buffers()[1], np.uint64)
    return words[array.offset * 2 : (array.offset + len(array)) * 2].reshape(-1, 2)


# -- the shuffle ----------------------------------------------------------------------------
STEP = "exact"


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


def run_exact_dedupe(executor: Executor, layout: Layout, storage: Storage, parts: int,
                     buckets: int, progress: Progress | None = None) -> None:
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
