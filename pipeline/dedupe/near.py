"""Near-duplicate clustering: MinHash LSH band keys -> candidate pairs -> verified edges ->
connected components.

The stage (`siftline.stages.near_dedupe`) adds each row's MinHash signature and LSH band keys
(`near_bands`, datasketch-compatible: `siftline.dedupe.minhash`); after scoring, a shuffle
through files clusters them:

  map (per part)       `band_rows`: one (key, node) row per band of each in-play document,
                       split into buckets by key, so a bucket holds every document that shares
                       any of its band keys
  reduce (per bucket)  `band_pairs`: documents sharing a band key are candidates. Without
                       verification each is paired with the smallest node of its group (a star,
                       linear in the collisions); with it, with each of the group's first
                       ANCHORS nodes (every pair in groups of up to ANCHORS + 1), so one false
                       candidate at the head of a group cannot hide the true pairs behind it.
                       Split by the part of the pair's smaller node u
  pairs (per part)     the distinct candidate pairs whose u lies in the part, with u's signature
                       (or text) taken from the staged part, split by the part of v. Without
                       verification they are the edges already
  check (per part)     v's signature (or text) from its staged part; a pair is an edge when its
                       similarity reaches the threshold (`Verify`)
  components           `siftline.dedupe.components`: every node -> its component's smallest node
  attach (per part)    `attach_dup_cluster`: `dup_cluster` (the cluster's smallest id) and
                       `dup_is_rep` (whether the row is that representative itself: ids are
                       not trusted to be unique)

Verification removes the pairs LSH let through below the threshold; it does not stop chaining:
components still join A and C when A~B and B~C pass, however far apart A and C are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

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
from siftline.dedupe.minhash import shingles
from siftline.documents import active_mask
from siftline.executors.base import Executor, Progress
from siftline.io.storage import Storage, join
from siftline.io.writers import read_ipc, read_ipc_batch, read_json, write_ipc, write_json
from siftline.layout import Layout

BANDS_COLUMN = "near_bands"
SIGNATURE_COLUMN = "minhash"
CLUSTER_COLUMN = "dup_cluster"
IS_REP_COLUMN = "dup_is_rep"
KEY_SEPARATOR = "\x00"
BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("id", pa.string())])
VERIFY_MODES = ("none", "signature", "jaccard")
# Per band group, each member is checked against the group's first ANCHORS members: at most
# ANCHORS x members pairs per group, and all pairs of the small groups real duplicates form.
ANCHORS = 4


@dataclass(frozen=True)
class Verify:
    """How a candidate pair is checked before it links two documents.

    `mode`: "none" (every shared band links), "signature" (the share of equal signature
    values, the MinHash estimate of the shingle Jaccard) or "jaccard" (the exact Jaccard of
    the two shingle sets, `ngram`/`char` as the signatures were cut); a pair is an edge when
    that reaches `threshold`.
    """

    mode: str = "none"
    threshold: float = 0.8
    ngram: int = 5
    char: bool = False

    def __post_init__(self) -> None:
        if self.mode not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {self.mode!r}")

    @property
    def anchors(self) -> int:
        return 1 if self.mode == "none" else ANCHORS

    @property
    def payload(self) -> str:
        """The staged column a pair's check reads."""
        return "text" if self.mode == "jaccard" else SIGNATURE_COLUMN


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


def node_location(nodes: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(part, row) of each node key: where its signature and text are staged."""
    tail = pc.list_element(pc.split_pattern(nodes, KEY_SEPARATOR, max_splits=1, reverse=True), 1)
    where = pc.split_pattern(tail, ":", max_splits=1)
    part = pc.cast(pc.list_element(where, 0), pa.int64()).to_numpy(zero_copy_only=False)
    row = pc.cast(pc.list_element(where, 1), pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(part, np.int64), np.asarray(row, np.int64)


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


def _unique_pairs(edges: pa.Table) -> pa.Table:
    """Distinct (u, v), sorted: what follows does not depend on the order they came in."""
    edges = edges.select(["u", "v"]).group_by(["u", "v"], use_threads=False).aggregate([])
    return edges.sort_by([("u", "ascending"), ("v", "ascending")]).cast(EDGE_SCHEMA)


def band_pairs(rows: pa.Table, anchors: int = 1) -> pa.Table:
    """Reduce side: candidate pairs (u < v) of the band-key groups, each member paired with
    the group's first `anchors` members (1: a star on the smallest node), distinct and sorted."""
    if rows.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    rows = rows.sort_by([("key", "ascending"), ("id", "ascending")])
    keys = rows.column("key").to_numpy()
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    index = np.arange(len(keys))
    group_start = np.maximum.accumulate(np.where(first, index, 0))
    ids = rows.column("id").combine_chunks()
    us, vs = [], []
    for offset in range(anchors):
        anchor = group_start + offset
        member = anchor < index  # the anchor comes earlier in the same group
        if not member.any():
            break
        us.append(ids.take(pa.array(anchor[member])))
        vs.append(ids.filter(pa.array(member)))
    if not us:  # every group is a single node
        return EDGE_SCHEMA.empty_table()
    u, v = pa.concat_arrays(us), pa.concat_arrays(vs)
    distinct = pc.not_equal(u, v)  # one node under one key twice (two bands' keys colliding)
    return _unique_pairs(pa.Table.from_arrays([u, v], schema=EDGE_SCHEMA).filter(distinct))


def band_edges(rows: pa.Table, buckets: int) -> list[pa.Table]:
    """Unverified edges (the star of each group), split by the bucket of u."""
    edges = band_pairs(rows)
    return _split(edges, bucket_of(edges.column("u"), buckets), buckets)


def _split(table: pa.Table, where: np.ndarray, count: int) -> list[pa.Table]:
    """Rows into `count` tables by `where`, each keeping the table's order."""
    return [table.filter(pa.array(where == i)) for i in range(count)]


def similar(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray,
            verify: Verify) -> np.ndarray:
    """Per pair, whether the two payloads (signatures, or texts for "jaccard") reach the
    threshold."""
    if verify.mode == "signature":
        sa, sb = _matrix(a, np.uint32), _matrix(b, np.uint32)
        if sa.shape[1] == 0:
            return np.ones(len(sa), bool)
        return np.count_nonzero(sa == sb, axis=1) / sa.shape[1] >= verify.threshold
    if verify.mode == "jaccard":
        sets: dict[str, frozenset[bytes]] = {}  # a text is in many pairs: cut it once

        def shingle_set(text: str) -> frozenset[bytes]:
            if text not in sets:
                sets[text] = frozenset(shingles(text, verify.ngram, char=verify.char))
            return sets[text]

        return np.array([_jaccard(shingle_set(x), shingle_set(y)) >= verify.threshold
                         for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], bool)
    return np.ones(len(a), bool)


def _jaccard(sa: frozenset[bytes], sb: frozenset[bytes]) -> float:
    inter = len(sa & sb)
    union = len(sa) + len(sb) - inter
    return inter / union if union else 1.0


def exact_jaccard(a: str, b: str, ngram: int = 5, char: bool = False) -> float:
    """Jaccard of the two texts' shingle sets (1.0 for two texts without shingles, as MinHash
    estimates two empty sets)."""
    return _jaccard(frozenset(shingles(a, ngram, char=char)),
                    frozenset(shingles(b, ngram, char=char)))


# -- the shuffle ----------------------------------------------------------------------------
STEP = "near"


@dataclass(frozen=True)
class _Task:
    layout: Layout
    storage: Storage
    parts: int
    buckets: int
    verify: Verify

    def file(self, kind: str, index: int) -> str:
        return join(self.layout.step_dir(STEP), f"{kind}-{index:05d}.arrow")

    def gather(self, files: list[str], batch: int) -> pa.Table:
        """Batch `batch` of every file in `files`."""
        return pa.concat_tables([read_ipc_batch(self.storage, uri, batch) for uri in files])


def _rows_in(storage: Storage, uri: str) -> int:
    """Rows in an IPC file, from its batches' headers."""
    if "://" not in uri:
        reader = pa.ipc.open_file(pa.memory_map(uri))
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    with storage.open(uri) as handle:
        reader = pa.ipc.open_file(handle)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def _staged(task: _Task, part: int, rows: np.ndarray) -> pa.Array:
    """The verification payload of the given rows of a staged part."""
    table = read_ipc(task.storage, task.layout.stage(part)).select([task.verify.payload])
    return table.column(0).combine_chunks().take(pa.array(rows, pa.int64()))


def _map(task: _Task, part: int) -> None:
    out = task.layout.shuffle_map(STEP, part)
    if task.storage.exists(out):
        return
    table = read_ipc(task.storage, task.layout.stage(part)).select(
        ["id", "drop_reason", BANDS_COLUMN])
    write_ipc(task.storage, out, band_rows(table, part, task.buckets), BAND_SCHEMA)


def _reduce(task: _Task, bucket: int) -> None:
    """Candidate pairs of a bucket's band groups, one batch per part of u."""
    out = task.layout.shuffle_reduce(STEP, bucket)
    if task.storage.exists(out):
        return
    rows = task.gather([task.layout.shuffle_map(STEP, p) for p in range(task.parts)], bucket)
    pairs = band_pairs(rows, task.verify.anchors)
    where, _ = node_location(pairs.column("u"))
    write_ipc(task.storage, out, _split(pairs, where, task.parts), EDGE_SCHEMA)


def _pairs(task: _Task, part: int) -> int:
    """The distinct candidates whose u is in `part`: as edges (no verification), or with u's
    payload, one batch per part of v. Returns how many."""
    verify = task.verify.mode != "none"
    out = task.file("pairs" if verify else "edges", part)
    if not task.storage.exists(out):
        files = [task.layout.shuffle_reduce(STEP, b) for b in range(task.buckets)]
        pairs = _unique_pairs(task.gather(files, part))
        if verify:
            _, rows = node_location(pairs.column("u"))
            pairs = pairs.append_column("pu", _staged(task, part, rows))
            where, _ = node_location(pairs.column("v"))
            write_ipc(task.storage, out, _split(pairs, where, task.parts), pairs.schema)
        else:
            where = bucket_of(pairs.column("u"), task.buckets)
            write_ipc(task.storage, out, _split(pairs, where, task.buckets), EDGE_SCHEMA)
    return _rows_in(task.storage, out)


def _check(task: _Task, part: int) -> int:
    """The candidates whose v is in `part` that pass verification, as edges split by the
    bucket of u. Returns how many."""
    out = task.file("edges", part)
    if not task.storage.exists(out):
        pairs = task.gather([task.file("pairs", p) for p in range(task.parts)], part)
        if pairs.num_rows:
            _, rows = node_location(pairs.column("v"))
            keep = similar(pairs.column("pu"), _staged(task, part, rows), task.verify)
            pairs = pairs.filter(pa.array(keep))
        edges = pairs.select(["u", "v"]).sort_by([("u", "ascending"), ("v", "ascending")])
        where = bucket_of(edges.column("u"), task.buckets)
        write_ipc(task.storage, out, _split(edges, where, task.buckets), EDGE_SCHEMA)
    return _rows_in(task.storage, out)


def _cluster_sizes(storage: Storage, uri: str) -> dict[str, int]:
    """Nodes per cluster representative in one components result file."""
    reps = read_ipc(storage, uri).column("rep").combine_chunks()
    counts = pc.value_counts(reps)
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                    strict=True))


def verify_settings(layout: Layout) -> str:
    """Where the stage records its `Verify` for the shuffle (which is given no config)."""
    return join(layout.step_dir(STEP), "verify.json")


def save_verify(layout: Layout, storage: Storage, verify: Verify) -> None:
    write_json(storage, verify_settings(layout), asdict(verify))


def load_verify(layout: Layout, storage: Storage) -> Verify:
    uri = verify_settings(layout)
    if not storage.exists(uri):
        raise FileNotFoundError(f"{uri}: near dedupe's settings are missing (the stage's "
                                "prepare writes them before scoring)")
    return Verify(**read_json(storage, uri))


def run_near_dedupe(executor: Executor, layout: Layout, storage: Storage, parts: int,
                    buckets: int, progress: Progress | None = None) -> dict[str, Any]:
    """The whole shuffle (module docstring); returns its counts for stats.json: distinct
    candidate pairs, verified edges, clusters, the documents in them and the largest one."""
    done = layout.step_done("near-components")
    if storage.exists(done):
        return read_json(storage, done)["stats"]
    verify = load_verify(layout, storage)
    task = _Task(layout, storage, parts, buckets, verify)
    executor.map(partial(_map, task), list(range(parts)), progress=progress)
    executor.map(partial(_reduce, task), list(range(buckets)), progress=progress)
    candidates = sum(executor.map(partial(_pairs, task), list(range(parts))))
    edges = candidates
    if verify.mode != "none":
        edges = sum(executor.map(partial(_check, task), list(range(parts))))
    edge_files = [task.file("edges", p) for p in range(parts)]
    files = connected_components(edge_files, executor, storage, layout.step_dir(STEP), buckets)
    sizes: Counter[str] = Counter()
    for counts in executor.map(partial(_cluster_sizes, storage), files):
        sizes.update(counts)
    stats = {"verify": verify.mode, "threshold": verify.threshold,
             "candidate_pairs": candidates, "verified_edges": edges, "clusters": len(sizes),
             "clustered_documents": sum(sizes.values()),
             "largest_cluster": max(sizes.values(), default=0)}
    write_json(storage, done, {"buckets": buckets, "result": files, "stats": stats})
    return stats


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
