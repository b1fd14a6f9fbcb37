"""Near-duplicate removal, per-batch and per-bucket halves (the global step is in job/).

1. `MinHashBands` (a stage, per batch): MinHash signatures of the shingles and their LSH band
   keys (`near_bands`), datasketch-compatible (see `siftline.dedupe`).
2. `band_rows` (map, per part): one (key, id) row per band of each in-play document, split into
   buckets by key, so a bucket holds every document that shares any of its band keys.
3. `band_edges` (reduce, per bucket): documents sharing a band key are candidates; each is linked
   to the smallest node of its group — a star, not all pairs, so the edges stay linear in the
   collisions. Connected components of these edges (`siftline.dedupe.components`) then give
   every document its cluster's smallest id (`dup_cluster`) and whether it is that
   representative row itself (`dup_is_rep`: ids are not trusted to be unique).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import NearDedupeConfig
from siftline.dedupe import band_keys, minhash_signatures
from siftline.dedupe.components import EDGE_SCHEMA, bucket_of
from siftline.documents import active_mask, as_table

BANDS_COLUMN = "near_bands"
SIGNATURE_COLUMN = "minhash"
CLUSTER_COLUMN = "dup_cluster"
IS_REP_COLUMN = "dup_is_rep"
KEY_SEPARATOR = "\x00"
BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("id", pa.string())])


class MinHashBands:
    """Stage `near_dedupe`: adds `near_bands` (and `minhash`); the global step clusters them."""

    name = "near_dedupe"

    def __init__(self, config: NearDedupeConfig) -> None:
        self.config = config
        self.bands, self.rows = config.band_shape()

    def __call__(self, table: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        table = as_table(table)
        cfg = self.config
        signatures = minhash_signatures(table.column("text"), cfg.num_perm, cfg.seed, cfg.ngram,
                                        char=cfg.char)
        keys = band_keys(signatures, self.bands, self.rows)
        table = table.append_column(BANDS_COLUMN, _fixed_list(keys, pa.uint64()))
        return table.append_column(SIGNATURE_COLUMN, _fixed_list(signatures, pa.uint32()))


def _fixed_list(matrix: np.ndarray, type_: pa.DataType) -> pa.FixedSizeListArray:
    values = pa.array(np.ascontiguousarray(matrix).reshape(-1), type_)
    return pa.FixedSizeListArray.from_arrays(values, matrix.shape[1])


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
