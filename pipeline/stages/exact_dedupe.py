"""Exact duplicate removal: hash the normalised text, keep the smallest id per hash.

Three steps, each small enough to read in one go:
1. `ExactHash` (a stage, per batch): 128-bit xxh3 of the text after Unicode NFC and whitespace
   collapsing, as the `exact_hash` column.
2. `bucket_keys` (map, per part): the (hash, id, part, row) keys of rows still in play, split
   into buckets by hash, so no single process ever holds every hash of the corpus.
3. `duplicates_in_bucket` (reduce, per bucket): within each hash group the row with the smallest
   (id, part, row) is the representative; every other row gets `exact_rep` = its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline.documents import active_mask, as_table

HASH_COLUMN = "exact_hash"
REP_COLUMN = "exact_rep"
HASH_TYPE = pa.binary(16)
KEY_SCHEMA = pa.schema(
    [("hash", HASH_TYPE), ("id", pa.string()), ("part", pa.int32()), ("row", pa.int64())]
)
DUP_SCHEMA = pa.schema([("part", pa.int32()), ("row", pa.int64()), (REP_COLUMN, pa.string())])


@numba.njit(cache=True, nogil=True, inline="always")
def _space_len(data: np.ndarray, i: int, end: int) -> int:
    """Length of the UTF-8 whitespace sequence at data[i] (0 if none), as str.split() sees it."""
    c = data[i]
    if c == 32 or 9 <= c <= 13 or 28 <= c <= 31:
        return 1
    if c == 0xC2 and i + 1 < end and (data[i + 1] == 0x85 or data[i + 1] == 0xA0):
        return 2
    if i + 2 < end:
        c1, c2 = data[i + 1], data[i + 2]
        if c == 0xE1 and c1 == 0x9A and c2 == 0x80:
            return 3
        if c == 0xE2 and c1 == 0x80 and (c2 <= 0x8A or c2 == 0xA8 or c2 == 0xA9 or c2 == 0xAF):
            return 3
        if c == 0xE2 and c1 == 0x81 and c2 == 0x9F:
            return 3
        if c == 0xE3 and c1 == 0x80 and c2 == 0x80:
            return 3
    return 0


# Byte classes: 0 = ordinary ASCII, 1 = ASCII whitespace, 2 = start of a multi-byte sequence.
_BYTE_CLASS = np.zeros(256, np.uint8)
_BYTE_CLASS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = 1
_BYTE_CLASS[0x80:] = 2


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _collapse_whitespace(
    data: np.ndarray, offsets: np.ndarray, out: np.ndarray, byte_class: np.ndarray
) -> np.ndarray:
    """Strip each string and turn every whitespace run into one space, in one pass."""
    n = offsets.shape[0] - 1
    out_offsets = np.empty(n + 1, np.int64)
    o = 0
    for d in range(n):
        out_offsets[d] = o
        pending = False
        started = False
        i = offsets[d]
        end = offsets[d + 1]
        while i < end:
            kind = byte_class[data[i]]
            width = 1 if kind == 1 else (_space_len(data, i, end) if kind == 2 else 0)
            if width:
                pending = started
                i += width
                continue
            if pending:
                out[o] = 32
                o += 1
                pending = False
            out[o] = data[i]
            o += 1
            started = True
            i += 1
    out_offsets[n] = o
    return out_offsets


def normalized_hashes(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """128-bit xxh3 of each text after NFC and whitespace collapsing (fixed_size_binary(16))."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    if len(texts) == 0:
        return pa.array([], HASH_TYPE)
    norm = pc.utf8_normalize(texts, "NFC").cast(pa.large_string())
    offsets = np.frombuffer(norm.buffers()[1], np.int64)[norm.offset : norm.offset + len(norm) + 1]
    data_buf = norm.buffers()[2]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    out = np.empty(max(int(offsets[-1] - offsets[0]), 1), np.uint8)
    out_offsets = _collapse_whitespace(data, offsets, out, _BYTE_CLASS).tolist()
    view = memoryview(out)
    digest = xxhash.xxh3_128_digest
    hashes = [digest(view[out_offsets[i] : out_offsets[i + 1]]) for i in range(len(norm))]
    return pa.array(hashes, HASH_TYPE)


class ExactHash:
    """Stage `exact_dedupe`: adds the `exact_hash` column; the global step decides duplicates."""

    name = "exact_dedupe"

    def __call__(self, table: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        table = as_table(table)
        return table.append_column(HASH_COLUMN, normalized_hashes(table.column("text")))


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
    return [keys.filter(pa.array(bucket_of == b)) for b in range(buckets)]


def duplicates_in_bucket(keys: pa.Table) -> pa.Table:
    """Reduce side: every row whose hash group has a smaller (id, part, row) is a duplicate."""
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


def _hash_words(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The 16-byte hashes as an (n, 2) uint64 array, for vectorised comparisons."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    words = np.frombuffer(array.buffers()[1], np.uint64)
    return words[array.offset * 2 : (array.offset + len(array)) * 2].reshape(-1, 2)
