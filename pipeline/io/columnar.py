"""Parquet and Arrow (Hugging Face `save_to_disk`) inputs, read column-wise.

Columns map to the document model without a Python loop over rows; only rows that fail a check
(null or non-UTF-8 text, wrong types) are visited one by one to build their rejects. Ids default
to `source:row`, the row counted from the start of the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siftline.config import FieldMap, InputConfig
from siftline.documents import BASE_SCHEMA, UNKNOWN_DOMAIN
from siftline.errors import InputError
from siftline.io.jsonl import Reject
from siftline.io.split import Split, SplitBatch
from siftline.io.storage import Storage, is_remote

BATCH_ROWS = 8192


def read_columnar(
    split: Split, config: InputConfig, storage: Storage, path_domain: str | None
) -> Iterator[SplitBatch]:
    """Yield document batches for a Parquet row-group range or a whole Arrow file."""
    fields = config.fields
    row = 0
    if split.format == "parquet":
        with storage.open(split.uri) as handle:
            pfile = pq.ParquetFile(handle)
            meta = pfile.metadata
            end = split.end if split.end is not None else meta.num_row_groups
            row = sum(meta.row_group(rg).num_rows for rg in range(split.start))
            columns = wanted_columns(pfile.schema_arrow, fields, split.uri)
            batches = pfile.iter_batches(
                batch_size=BATCH_ROWS, row_groups=list(range(split.start, end)), columns=columns
            )
            for batch in batches:
                yield _to_documents(batch, split.uri, row, fields, path_domain)
                row += batch.num_rows
        return
    table = _read_arrow(split.uri, storage)
    table = table.select(wanted_columns(table.schema, fields, split.uri))
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        yield _to_documents(batch, split.uri, row, fields, path_domain)
        row += batch.num_rows


def _arrow_reader(uri: str, storage: Storage) -> pa.ipc.RecordBatchStreamReader:
    """Hugging Face writes the Arrow stream format; plain Arrow IPC files work too."""
    if is_remote(uri):
        with storage.open(uri) as handle:
            source = pa.py_buffer(handle.read())
    else:
        source = pa.memory_map(uri)
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        if isinstance(source, pa.MemoryMappedFile):
            source.seek(0)
        return pa.ipc.open_file(source)


def _read_arrow(uri: str, storage: Storage) -> pa.Table:
    return _arrow_reader(uri, storage).read_all()


def columnar_schema(uri: str, fmt: str, storage: Storage) -> pa.Schema:
    """The schema of a Parquet or Arrow input, read from its footer or header only."""
    if fmt == "parquet":
        with storage.open(uri) as handle:
            return pq.ParquetFile(handle).schema_arrow
    return _arrow_reader(uri, storage).schema


def wanted_columns(schema: pa.Schema, fields: FieldMap, uri: str) -> list[str]:
    names = schema.names
    top = fields.text.split(".")[0]
    if top not in names:
        raise InputError(f"{uri}: no text column {fields.text!r} (columns: {sorted(names)})")
    wanted = [top]
    for key in (fields.id, fields.domain):
        top = key.split(".")[0]
        if top in names and top not in wanted:
            wanted.append(top)
    return wanted


def _get(batch: pa.RecordBatch, dotted: str) -> pa.Array | None:
    """A column by name or dotted path into struct columns; None when absent."""
    if dotted in batch.schema.names:
        return batch.column(dotted)
    head, *rest = dotted.split(".")
    if head not in batch.schema.names:
        return None
    array = batch.column(head)
    for part in rest:
        if not pa.types.is_struct(array.type) or array.type.get_field_index(part) < 0:
            return None
        array = pc.struct_field(array, part)
    return array


def _is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def _to_documents(
    batch: pa.RecordBatch, source: str, first_row: int, fields: FieldMap, path_domain: str | None
) -> SplitBatch:
    n = batch.num_rows
    errors: list[str | None] = [None] * n
    text = _get(batch, fields.text)
    if not _is_text(text):
        errors = [f"text field {fields.text!r} is {text.type}, expected string"] * n
    else:
        text = text.cast(pa.string())
        _mark(errors, pc.is_null(text), f"text field {fields.text!r} is null")
        _mark_invalid_utf8(errors, text, f"text field {fields.text!r}")
    ids = _id_column(batch, fields.id, errors, source, first_row)
    domains = _domain_column(batch, fields.domain, errors, path_domain)
    bad = [i for i, err in enumerate(errors) if err is not None]
    rejects = [Reject(source, errors[i], row=first_row + i) for i in bad]
    if bad:
        keep = pa.array([err is None for err in errors])
        ids, text, domains = (pc.filter(col, keep) for col in (ids, text, domains))
    sources = pa.array([source] * len(ids), pa.string())
    table = pa.Table.from_arrays([ids, text, domains, sources], schema=BASE_SCHEMA)
    return SplitBatch(table, rejects)


def _mark(errors: list[str | None], mask: pa.Array, message: str) -> None:
    for i, flagged in enumerate(mask.to_pylist()):
        if flagged and errors[i] is None:
            errors[i] = message


def _valid_utf8(column: pa.Array) -> bool:
    try:
        column.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _mark_invalid_utf8(errors: list[str | None], column: pa.Array, what: str) -> None:
    """Parquet readers do not validate UTF-8; find the offending rows before they spread."""
    if _valid_utf8(column):
        return
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):
        if raw is None or errors[i] is not None:
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            errors[i] = f"{what} is not valid UTF-8"


def _id_column(
    batch: pa.RecordBatch, key: str, errors: list[str | None], source: str, first_row: int
) -> pa.Array:
    derived = pa.array([f"{source}:{first_row + i}" for i in range(batch.num_rows)], pa.string())
    column = _get(batch, key)
    if column is None:
        return derived
    if not (_is_text(column) or pa.types.is_integer(column.type)):
        _mark(errors, pa.array([True] * batch.num_rows), f"id field {key!r} is {column.type}")
        return derived
    if _is_text(column):
        _mark_invalid_utf8(errors, column.cast(pa.string()), f"id field {key!r}")
    return pc.coalesce(column.cast(pa.string()), derived)


def _domain_column(
    batch: pa.RecordBatch, key: str, errors: list[str | None], path_domain: str | None
) -> pa.Array:
    n = batch.num_rows
    if path_domain is not None:
        return pa.array([path_domain] * n, pa.string())
    column = _get(batch, key)
    if column is None:
        return pa.array([UNKNOWN_DOMAIN] * n, pa.string())
    if not _is_text(column):
        _mark(errors, pa.array([True] * n), f"domain field {key!r} is {column.type}")
        return pa.array([UNKNOWN_DOMAIN] * n, pa.string())
    column = column.cast(pa.string())
    _mark_invalid_utf8(errors, column, f"domain field {key!r}")
    empty = pc.equal(pc.binary_length(column), 0)
    return pc.if_else(pc.fill_null(empty, True), pa.scalar(UNKNOWN_DOMAIN), column)
