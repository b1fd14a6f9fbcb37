"""Global near-dedupe step: band-key shuffle -> candidate edges -> connected components.

map (per part): (band key, id) rows of in-play documents -> one Arrow file, a batch per bucket.
reduce (per bucket): group by band key, star edges to each group's smallest id -> an edge file
bucketed by the edge's first node, as `connected_components` expects. Components then run as
distributed rounds over those files, and finalize looks each document's cluster up by id.
Each step skips work whose file exists, so a killed run resumes; the components are recomputed
from the edge files unless their completion record exists.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from siftline.dedupe.components import EDGE_SCHEMA, connected_components, lookup_reps
from siftline.executors import Executor
from siftline.io.storage import Storage, join
from siftline.io.writers import read_ipc, write_ipc, write_json
from siftline.job.exact_dedupe import ShuffleTask
from siftline.layout import Layout
from siftline.stages.near_dedupe import (
    BAND_SCHEMA,
    BANDS_COLUMN,
    CLUSTER_COLUMN,
    IS_REP_COLUMN,
    KEY_SEPARATOR,
    band_edges,
    band_rows,
    node_keys,
)

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


def components_dir(layout: Layout) -> str:
    return join(layout.work, STEP)


def result_files(layout: Layout, buckets: int) -> list[str]:
    return [join(components_dir(layout), "cc", "result", f"part-{b:05d}.arrow")
            for b in range(buckets)]


def run_near_dedupe(executor: Executor, layout: Layout, storage: Storage, parts: int,
                    buckets: int, progress=None) -> None:
    done = join(layout.work, "done", "near-components.json")
    if storage.exists(done):
        return
    task = ShuffleTask(layout, storage, parts, buckets)
    executor.map(partial(_map, task), list(range(parts)), progress=progress)
    executor.map(partial(_reduce, task), list(range(buckets)), progress=progress)
    edges = [layout.shuffle_reduce(STEP, b) for b in range(buckets)]
    files = connected_components(edges, executor, storage, components_dir(layout), buckets)
    if files != result_files(layout, buckets):
        raise RuntimeError("connected components wrote its result somewhere unexpected")
    write_json(storage, done, {"buckets": buckets, "result": files})


def attach_dup_cluster(table: pa.Table, layout: Layout, storage: Storage, part: int,
                       buckets: int) -> pa.Table:
    """Add `dup_cluster` (the smallest id of the row's near-duplicate cluster, its own id when
    it has none) and `dup_is_rep` (whether the row is that representative itself)."""
    nodes = node_keys(table.column("id"), part)
    reps = pc.coalesce(lookup_reps(result_files(layout, buckets), storage, nodes, buckets), nodes)
    cluster = pc.list_element(pc.split_pattern(reps, KEY_SEPARATOR, max_splits=1), 0)
    table = table.append_column(CLUSTER_COLUMN, cluster)
    return table.append_column(IS_REP_COLUMN, pc.equal(reps, nodes))

