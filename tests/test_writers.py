"""The Parquet writer: its bytes are a function of the rows alone; a file written behind
(fsync and rename on a thread) lands only when its future is done."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from helpers import rechunk

from pipeline.io.storage import Storage
from pipeline.io.writers import ROW_GROUP_ROWS, parquet_bytes, write_parquet_behind


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


def test_a_parquet_written_behind_lands_when_its_future_is_done(tmp_path) -> None:
    storage = Storage()
    table = _table(50, 3)
    gate = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as flusher:
        flusher.submit(gate.wait)  # holds the commit back, to look before it
        info, done = write_parquet_behind(storage, str(tmp_path), "data/a.parquet", table,
                                          "zstd", flusher)
        final = tmp_path / "data" / "a.parquet"
        assert not final.exists() and [p.name for p in final.parent.iterdir()][0].endswith(".tmp")
        gate.set()
        done.result()
    assert final.read_bytes() == parquet_bytes(table, "zstd")
    assert (info.rows, info.bytes) == (50, final.stat().st_size)
    assert [p.name for p in final.parent.iterdir()] == ["a.parquet"]


def test_a_discarded_write_leaves_nothing(tmp_path) -> None:
    pending = Storage().start_write(str(tmp_path / "x.bin"), b"bytes")
    assert len(list(tmp_path.iterdir())) == 1
    pending.discard()
    assert list(tmp_path.iterdir()) == []
