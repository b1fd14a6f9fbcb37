"""The Parquet writer's bytes are a function of the rows alone."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import rechunk

from siftline.io import writers
from siftline.io.writers import MAX_BATCH_ROWS, ROW_GROUP_ROWS, _row_sizes, parquet_bytes


def _table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefgh ", np.uint8)
    lengths = rng.integers(0, 3000, rows)
    data = letters[rng.integers(0, len(letters), int(lengths.sum()))]
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    texts = pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets),
                                                      pa.py_buffer(data.tobytes())])
    return pa.table({
        "id": [f"doc-{i}" for i in range(rows)],
        "text": texts,
        "domain": pa.array(rng.choice(["web", "news"], rows)),
        "n_bytes": pa.array(lengths, pa.int64()),
    })


def test_parquet_bytes_do_not_depend_on_the_chunks() -> None:
    """Staged batches, kept rows as slices and one re-read column must write the same shard
    (pages of ~1 MB, several per row group, so a chunk start could move a page's end)."""
    table = _table(ROW_GROUP_ROWS + 700, 0)
    one = parquet_bytes(table.combine_chunks(), "zstd")
    rng = np.random.default_rng(1)
    for pieces in (2, 7, 300):
        chunked = rechunk(table, rng.integers(0, table.num_rows, pieces).tolist())
        assert chunked.column("text").num_chunks > 1
        assert parquet_bytes(chunked, "zstd") == one
    assert parquet_bytes(table.slice(1), "zstd") != one
    # a scored part: no text, but a column of over a page per row group (a signature)
    signatures = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(256), table.num_rows,
        [None, pa.py_buffer(np.random.default_rng(2).bytes(256 * table.num_rows))])
    small = table.drop_columns(["text"]).append_column("signature", signatures)
    assert parquet_bytes(rechunk(small, [5, 900, 8200]), "zstd") == parquet_bytes(small, "zstd")


def test_row_groups_and_write_batches_hold_a_bounded_amount_of_text(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A page ends after the batch that fills it (1,024 long documents would make one page),
    and a row group is copied whole before it is written: both are bounded in text bytes."""
    table = _table(300, 4)
    mean = sum(len(t) for t in table.column("text").to_pylist()) / table.num_rows
    groups, batches = _row_sizes(table)
    assert groups == ROW_GROUP_ROWS
    assert abs(batches * mean - 256 * 1024) < 1.5 * mean
    long = pa.table({"id": ["a", "b", "c"], "text": ["x" * 400_000, "y" * 200_000, "z"]})
    assert _row_sizes(long) == (335, 1)  # 64 MB of text at 200 KB per row, but 3 rows
    assert _row_sizes(pa.table({"id": ["a"] * 10, "text": ["short"] * 10})) == (
        ROW_GROUP_ROWS, MAX_BATCH_ROWS)
    assert _row_sizes(table.drop_columns(["text"])) == (ROW_GROUP_ROWS, MAX_BATCH_ROWS)
    assert _row_sizes(table.slice(0, 0)) == (ROW_GROUP_ROWS, MAX_BATCH_ROWS)
    monkeypatch.setattr(writers, "GROUP_TEXT_BYTES", 300_000)
    metadata = pq.ParquetFile(io.BytesIO(parquet_bytes(long, "zstd"))).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [1, 1, 1]
