"""The document model: pyarrow tables with id, text, domain, source, plus score columns.

Stages add columns and never drop rows. Rows that must not be kept carry a `drop_reason`;
the reasons have a fixed priority (the first that applies is the one recorded: the reading-time
reasons here, then each stage's in the order of its declared priority), so a row that is both
empty and a duplicate is counted once, as `empty`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LOCAL_REASONS = ("empty", "too_long")  # decided while reading, before every stage's reason

BASE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
UNKNOWN_DOMAIN = "unknown"


def make_table(
    ids: list[str], texts: list[str], domains: list[str], sources: list[str]
) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(texts, pa.string()),
            pa.array(domains, pa.string()),
            pa.array(sources, pa.string()),
        ],
        schema=BASE_SCHEMA,
    )


def from_records(records: Iterable[Mapping[str, Any]], source: str = "memory") -> pa.Table:
    """Build a document table from dicts (the importable API's convenience entry point)."""
    ids, texts, domains, sources = [], [], [], []
    for row, rec in enumerate(records):
        if not isinstance(rec.get("text"), str):
            raise TypeError(f"record {row}: 'text' must be a string, got {type(rec.get('text'))}")
        ids.append(str(rec["id"]) if rec.get("id") is not None else f"{source}:{row}")
        texts.append(rec["text"])
        domains.append(str(rec.get("domain") or UNKNOWN_DOMAIN))
        sources.append(str(rec.get("source") or source))
    return make_table(ids, texts, domains, sources)


def as_table(data: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
    return data if isinstance(data, pa.Table) else from_records(data)


def add_local_reasons(table: pa.Table, max_doc_bytes: int) -> pa.Table:
    """Add `n_chars`, `n_bytes` and `drop_reason` (`empty` / `too_long` / null)."""
    text = table.column("text")
    n_bytes = pc.binary_length(text)
    n_chars = pc.utf8_length(text)
    empty = _blank(text)
    too_long = pc.greater(n_bytes, max_doc_bytes)
    none = pa.scalar(None, pa.string())
    reason = pc.if_else(empty, "empty", pc.if_else(too_long, "too_long", none))
    table = table.append_column("n_chars", pc.cast(n_chars, pa.int64()))
    table = table.append_column("n_bytes", pc.cast(n_bytes, pa.int64()))
    return table.append_column("drop_reason", pc.cast(reason, pa.string()))


# Bytes a whitespace character can start with: ASCII up to ' ' (a superset of its whitespace)
# and the UTF-8 lead bytes of U+0085, U+00A0, U+1680, U+2000-U+205F and U+3000, all that
# `utf8_trim_whitespace` trims (tests/test_documents.py checks this over every code point).
_MAY_START_BLANK = np.zeros(256, bool)
_MAY_START_BLANK[: 0x21] = True
_MAY_START_BLANK[[0xC2, 0xE1, 0xE2, 0xE3]] = True


def _blank(text: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Empty or whitespace-only. Only rows that are empty or start with a byte a whitespace
    character can start with can be, so only those are trimmed (trimming every row would copy
    all the text once more); their first bytes are read straight from the buffers, and they
    are taken chunk by chunk (a take from a chunked array copies all its text first)."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    blank = [_blank_rows(chunk) for chunk in chunks]
    return pa.array(np.concatenate(blank) if blank else np.zeros(0, bool))


def _blank_rows(chunk: pa.Array) -> np.ndarray:
    rows = np.flatnonzero(_may_be_blank(chunk))
    blank = np.zeros(len(chunk), bool)
    if len(rows):
        trimmed = pc.utf8_trim_whitespace(chunk.take(pa.array(rows)))
        blank[rows] = np.asarray(pc.equal(pc.utf8_length(trimmed), 0).to_numpy(
            zero_copy_only=False), bool)
    return blank


def _may_be_blank(chunk: pa.Array) -> np.ndarray:
    """Rows that are empty (or null) or whose first byte may start a whitespace character."""
    if len(chunk) == 0:
        return np.zeros(0, bool)
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        chunk = chunk.cast(pa.large_string())
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], width)[chunk.offset : chunk.offset + len(chunk) + 1]
    starts, ends = offsets[:-1], offsets[1:]
    data = chunk.buffers()[2]
    if data is None or len(data) == 0:
        return np.ones(len(chunk), bool)
    first = np.frombuffer(data, np.uint8)[np.minimum(starts, len(data) - 1)]
    return (ends <= starts) | _MAY_START_BLANK[first]


def active_mask(table: pa.Table) -> pa.ChunkedArray:
    """Rows still in play (no drop reason yet): the rows a costly stage should score."""
    return pc.is_null(table.column("drop_reason"))


def first_reason(*candidates: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Combine reason columns in priority order: the first non-null wins per row."""
    return pc.coalesce(*candidates)
