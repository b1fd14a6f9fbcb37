"""Near-duplicate clustering: MinHash LSH band keys -> candidate edges -> connected components.

The stage (`siftline.stages.near_dedupe`) adds each row's MinHash signature and LSH band keys
(`near_bands`, datasketch-compatible: `siftline.dedupe.minhash`); after scoring, a shuffle
through files clusters them:

  map (per part)       `band_rows`: one (key, node) row per band of each in-play document,
                       split into buckets by key, so a bucket holds every document that shares
                       any of its band keys
  reduce (per bucket)  `band_edges`: documents sharing a band key are candidates; each is linked
                       to the smallest node of its group (a star, not all pairs, so the edges
                       stay linear in the collisions)
  components           `siftline.dedupe.components`: every node -> its component's smallest node
  attach (per part)    `attach_dup_cluster`: `dup_cluster` (the cluster's smallest id) and
                       `dup_is_rep` (whether the row is that representative itself: ids are
                       not trusted to be unique)
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.dedupe.components import (
    EDGE_SCHEMA,
    bucket_of,
    connected_components,
    lookup_reps,
    result_files,
)
from siftline.dedupe.shuffle import ShuffleTask
from siftline.documents import active_mask
from siftline.executors.base import Executor, Progress
from siftline.io.storage import Storage
from siftline.io.writers import read_ipc, write_ipc, write_json
from siftline.layout import Layout

BANDS_COLUMN = "near_bands"
SIGNATURE_COLUMN = "minhash"
CLUSTER_COLUMN = "dup_cluster"
IS_REP_COLUMN = "dup_is_rep"
KEY_SEPARATOR = "\x00"
BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("id", pa.string())])


def _matrix(column: pa.ChunkedArray | pa.Array, dtype: type) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(-1, width)


def node_keys(ids: pa.ChunkedArray | pa.Array, part: int) -> pa.Array:
    """A graph node per row: `id NUL part:row`. Unique even when ids repeat, and ordered like
    (id, part, row) — the same tie-break exact dedupe uses — so a cluster's smallest key is its
    smallest id."""
    suffixes = [f"{KEY_SEPARATOR}{part:05d}:{row:010d}" for row in range(len(ids))]
    return pc.binary_join_element_wise(ids, pa.array(suffixes, pa.string()), "")


def band_rows(table: pa.Table, part: int, buckets: int) -> list[pa.Table]:
    """Map side: (band key, node) for every band of every in-play row, split by key."""
    active = np.asarray(active_mask(table).to_numpy(zero_copy_only=False), bool)
    keys = _matrix(table.column(BANDS_COLUMN), np.uint64)[active]
    rows = np.flatnonzero(active)
    nodes = node_keys(table.column("id"), part)
    ids = nodes.take(pa.array(np.repeat(rows, keys.shape[1])))
    flat = keys.reshape(-1)
    where = flat % np.uint64(buckets)
    out = pa.Table.from_arrays([pa.array(flat, pa.uint64()), ids], schema=BAND_SCHEMA)
    return [out.filter(pa.array(where == b)) for b in range(buckets)]


def band_edges(rows: pa.Table, buckets: int) -> list[pa.Table]:
    """Reduce side: link every member of a band-key group to the group's smallest id."""
    if rows.num_rows == 0:
        return [EDGE_SCHEMA.empty_table() for _ in range(buckets)]
    rows = rows.sort_by([("key", "ascending"), ("id", "ascending")])
    keys = rows.column("key").to_numpy()
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))
    ids = rows.column("id").combine_chunks()
    u = ids.take(pa.array(group_start))
    member = ~first & pc.not_equal(u, ids).to_numpy(zero_copy_only=False)
    edges = pa.Table.from_arrays([u.filter(pa.array(member)), ids.filter(pa.array(member))],
                                 schema=EDGE_SCHEMA)
    edges = edges.group_by(["u", "v"], use_threads=False).aggregate([])
    edges = edges.sort_by([("u", "ascending"), ("v", "ascending")])
    where = bucket_of(edges.column("u"), buckets)
    return [edges.filter(pa.array(where == b)) for b in range(buckets)]


# -- the shuffle ----------------------------------------------------------------------------
STEP = "near"


def _map(task: ShuffleTask, part: int) -> None:
    out = task.layout.shuffle_map(STEP, part)
    if task.storage.exists(out):
        return
    table = read_ipc(task.storage, task.layout.stage(part)).select(
        ["id", "drop_reason", BANDS_COLUMN])
    write_ipc(task.storage, out, band_rows(table, part, task.buckets), BAND_SCHEMA)


def _reduce(task: ShuffleTask, bucket: int) -> None:
    out = task.layout.shuffle_reduce(STEP, bucket)
    if task.storage.exists(out):
        return
    write_ipc(task.storage, out, band_edges(task.gather(STEP, bucket), task.buckets), EDGE_SCHEMA)


def run_near_dedupe(executor: Executor, layout: Layout, storage: Storage, parts: int,
                    buckets: int, progress: Progress | None = None) -> None:
    done = layout.step_done("near-components")
    if storage.exists(done):
        return
    task = ShuffleTask(layout, storage, parts, buckets)
    executor.map(partial(_map, task), list(range(parts)), progress=progress)
    executor.map(partial(_reduce, task), list(range(buckets)), progress=progress)
    edges = [layout.shuffle_reduce(STEP, b) for b in range(buckets)]
    files = connected_components(edges, executor, storage, layout.step_dir(STEP), buckets)
    write_json(storage, done, {"buckets": buckets, "result": files})


def attach_dup_cluster(table: pa.Table, layout: Layout, storage: Storage, part: int,
                       buckets: int) -> pa.Table:
    """Add `dup_cluster` (the smallest id of the row's near-duplicate cluster, its own id when
    it has none) and `dup_is_rep` (whether the row is that representative itself)."""
    nodes = node_keys(table.column("id"), part)
    files = result_files(layout.step_dir(STEP), buckets)
    reps = pc.coalesce(lookup_reps(files, storage, nodes, buckets), nodes)
    cluster = pc.list_element(pc.split_pattern(reps, KEY_SEPARATOR, max_splits=1), 0)
    table = table.append_column(CLUSTER_COLUMN, cluster)
    return table.append_column(IS_REP_COLUMN, pc.equal(reps, nodes))

