"""Deterministic, all-or-nothing file writers: Parquet shards, Arrow IPC, JSON and JSON Lines.

Writers are pure functions of their input table: the same rows give the same bytes, so a
resumed run rewrites a lost file identically. Every write goes through `Storage.atomic_write`,
so a file exists under its final name only when it is complete. NeMo Curator's writer base and
datatrove's output writers inspired the shape: deterministic names, size-bounded shards.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siftline.io.storage import PendingFile, Storage, is_remote

ROW_GROUP_ROWS = 8192
GROUP_TEXT_BYTES = 64 << 20
MAX_BATCH_ROWS = 1024  # pyarrow's write batch
BATCH_TEXT_BYTES = 256 << 10


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the output folder
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parquet_bytes(table: pa.Table, compression: str) -> bytes:
    """The bytes depend on the rows only, not on how the table is chunked, so that `run`
    (staged batches, kept rows as slices) and `select` (columns re-read) write the same files:
    the writer ends a page after a batch of rows, and a batch stops at a chunk's end, so each
    row group is made one chunk before it is written (a copy of one row group at a time: the
    writer takes one chunk in a fraction of the time it takes thousands of slices).
    tests/test_writers.py."""
    group_rows, batch_rows = _row_sizes(table)
    buffer = io.BytesIO()
    with pq.ParquetWriter(
        buffer,
        table.schema,
        compression=None if compression == "none" else compression,
        write_batch_size=batch_rows,
        use_dictionary=_repetitive(table.schema),
        write_statistics=[name for name in table.column_names if name != "text"],
    ) as writer:
        for start in range(0, max(table.num_rows, 1), group_rows):
            writer.write_table(table.slice(start, group_rows).combine_chunks(),
                               row_group_size=group_rows)
    return buffer.getvalue()


def _row_sizes(table: pa.Table) -> tuple[int, int]:
    """Rows per row group and per write batch, from the text's mean length (a function of the
    rows, like the bytes). A row group holds ROW_GROUP_ROWS rows or GROUP_TEXT_BYTES of text,
    whichever is less: the bound on the copy above. A batch holds about BATCH_TEXT_BYTES: a
    page ends after the batch that fills pyarrow's 1 MB, so pages stay near 1 MB for long
    documents too, instead of one page per 1,024 of them. Without text: pyarrow's sizes."""
    if "text" not in table.column_names or table.num_rows == 0:
        return ROW_GROUP_ROWS, MAX_BATCH_ROWS
    rows = table.num_rows
    text_bytes = max(pc.sum(pc.binary_length(table.column("text"))).as_py() or 0, 1)
    return (max(1, min(ROW_GROUP_ROWS, GROUP_TEXT_BYTES * rows // text_bytes)),
            max(1, min(MAX_BATCH_ROWS, BATCH_TEXT_BYTES * rows // text_bytes)))


def _repetitive(schema: pa.Schema) -> list[str]:
    """The columns a dictionary pays for: strings such as domain, source or drop_reason. Text
    and ids are unique per row, numbers and hashes nearly so: a dictionary would be built
    only to be given up (or kept, larger than the plain values)."""
    return [field.name for field in schema
            if pa.types.is_string(field.type) and field.name not in ("text", "id")]


def write_parquet(
    storage: Storage, root: str, rel: str, table: pa.Table, compression: str = "zstd",
    pending: list[PendingFile] | None = None,
) -> FileInfo:
    """Serialise in memory (to hash it), then one atomic write: one PUT on S3. With `pending`,
    a local file is left under a temporary name for the caller to commit (`write_pending`)."""
    data = parquet_bytes(table, compression)
    if pending is None:
        storage.write_bytes(f"{root}/{rel}", data)
    elif (written := storage.write_pending(f"{root}/{rel}", data)) is not None:
        pending.append(written)
    return FileInfo(rel, table.num_rows, len(data), hashlib.sha256(data).hexdigest())


def write_ipc(storage: Storage, uri: str, tables: list[pa.Table], schema: pa.Schema,
              durable: bool = True) -> None:
    """An Arrow IPC file with one record batch per table (empty tables give empty batches), so
    a reader can fetch table i alone (`read_ipc_batch`): the shuffles' bucket files."""
    batches = []
    for table in tables:
        combined = table.combine_chunks()
        batches.append(combined.to_batches()[0] if combined.num_rows
                       else pa.RecordBatch.from_pylist([], schema=schema))
    _write_batches(storage, uri, batches, schema, durable)


def write_table_ipc(storage: Storage, uri: str, table: pa.Table, durable: bool = True) -> None:
    """A table as an Arrow IPC file of its own chunks, for a table only ever read whole: no
    concatenating copy, and no serialised copy in memory (a split's staged part is the largest
    file of a job; a buffer of its size cost more to fault in than the file cost to write)."""
    _write_batches(storage, uri, table.to_batches(), table.schema, durable)


def _write_batches(storage: Storage, uri: str, batches: list[pa.RecordBatch],
                   schema: pa.Schema, durable: bool) -> None:
    """Written straight to the file, which appears whole (`Storage.write_stream`)."""

    def produce(handle: IO[bytes]) -> None:
        with pa.ipc.new_file(handle, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)

    storage.write_stream(uri, produce, durable)


def read_ipc_batch(storage: Storage, uri: str, index: int) -> pa.Table:
    """One record batch of an IPC file: mapped locally, fetching only what it needs on a
    remote store."""
    if "://" not in uri:
        return pa.Table.from_batches([pa.ipc.open_file(pa.memory_map(uri)).get_batch(index)])
    with storage.open(uri) as handle:
        reader = pa.ipc.open_file(handle)
        return pa.Table.from_batches([reader.get_batch(index)])


def read_ipc(storage: Storage, uri: str) -> pa.Table:
    if "://" in uri:
        with storage.open(uri) as handle:
            return pa.ipc.open_file(pa.py_buffer(handle.read())).read_all()
    return pa.ipc.open_file(pa.memory_map(uri)).read_all()


def write_json(storage: Storage, uri: str, data: Any, durable: bool = True) -> None:
    payload = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    storage.write_bytes(uri, payload.encode("utf-8"), durable)


def read_record(storage: Storage, uri: str) -> Any | None:
    """A completion record, or None when it is missing or was cut short (written without
    fsync, `durable=False`, and a power cut came): its step is then simply redone."""
    if not storage.exists(uri):
        return None
    try:
        return read_json(storage, uri)
    except ValueError:
        return None


def ipc_whole(storage: Storage, uri: str, *, batches: int | None = None,
              rows: int | None = None) -> bool:
    """Whether a scratch Arrow file written without fsync is there whole: its footer (written
    last) opens and names `batches` record batches, holding `rows` rows in all (each checked
    when given). An S3 PUT is atomic and durable, so a remote one that exists is whole."""
    if not storage.exists(uri):
        return False
    if is_remote(uri):
        return True
    try:
        reader = pa.ipc.open_file(pa.memory_map(uri))
        n = reader.num_record_batches
        return ((batches is None or n == batches)
                and (rows is None or sum(reader.get_batch(i).num_rows for i in range(n)) == rows))
    except (OSError, pa.ArrowInvalid):
        return False


def read_json(storage: Storage, uri: str) -> Any:
    return json.loads(storage.read_text(uri))


def write_jsonl(storage: Storage, uri: str, rows: list[dict[str, Any]]) -> None:
    lines = (json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)
    storage.write_bytes(uri, ("\n".join(lines) + "\n").encode("utf-8"))


def split_by_bytes(table: pa.Table, target_bytes: int, size_column: str) -> list[pa.Table]:
    """Cut a table into consecutive slices of about `target_bytes` each (never empty): a slice
    ends at the first row that brings it to `target_bytes`, unless that row is the last."""
    if table.num_rows == 0:
        return []
    ends = np.cumsum(table.column(size_column).to_numpy(), dtype=np.int64)
    pieces, start = [], 0
    while True:
        before = int(ends[start - 1]) if start else 0  # bytes in the earlier slices
        last = start + int(np.searchsorted(ends[start:], before + target_bytes))
        if last + 1 >= table.num_rows:
            break
        pieces.append(table.slice(start, last + 1 - start))
        start = last + 1
    pieces.append(table.slice(start))
    return pieces
