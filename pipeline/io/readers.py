"""Reading a split (`siftline.io.split`, planned by `siftline.io.inputs`): document batches of
about `input.batch_bytes` of text, plus the records quarantined on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import InputConfig
from siftline.documents import BASE_SCHEMA, UNKNOWN_DOMAIN, make_table
from siftline.io.columnar import read_columnar
from siftline.io.jsonl import Reject, iter_blocks, iter_lines, line_result
from siftline.io.jsonl_compiled import CompiledJsonl
from siftline.io.jsonl_fast import FastJsonl, Rows, SlowLine
from siftline.io.split import Split, SplitBatch
from siftline.io.storage import Storage

JSONL_FAST = True  # read JSON Lines a block at a time (compiled parser or pyarrow; False: by line)


# -- reading -----------------------------------------------------------------------------------
class DomainResolver:
    """Domain from a path regex (one per split) or from the record field, else `unknown`."""

    def __init__(self, pattern: str | None) -> None:
        self.regex = re.compile(pattern) if pattern else None

    def for_path(self, uri: str) -> str | None:
        if self.regex is None:
            return None
        match = self.regex.search(uri)
        if match is None:
            return UNKNOWN_DOMAIN
        return match.group(1) if match.groups() else match.group(0)


def read_split(split: Split, config: InputConfig, storage: Storage) -> Iterator[SplitBatch]:
    """Stream a split as batches of about `config.batch_bytes` of text.

    The cuts are a function of the split's bytes and the config alone, so a split read again
    yields the same batches (batch checkpoints rely on it: pipeline/job/split_checkpoint.py)."""
    path_domain = DomainResolver(config.fields.domain_from_path).for_path(split.uri)
    if split.format == "jsonl":
        yield from _read_jsonl(split, config, storage, path_domain)
    else:
        yield from read_columnar(split, config, storage, path_domain)


def _read_jsonl(
    split: Split, config: InputConfig, storage: Storage, path_domain: str | None
) -> Iterator[SplitBatch]:
    if JSONL_FAST and (CompiledJsonl.usable(config.fields, path_domain)
                       or FastJsonl.usable(config.fields, path_domain)):
        yield from _read_jsonl_blocks(split, config, storage, path_domain)
    else:
        yield from _read_jsonl_lines(split, config, storage, path_domain)


def _read_jsonl_blocks(
    split: Split, config: InputConfig, storage: Storage, path_domain: str | None
) -> Iterator[SplitBatch]:
    """Blocks of lines through the compiled parser (`jsonl_compiled`) or pyarrow's reader
    (`jsonl_fast`); the lines they cannot vouch for go through `line_result`, so the rows and
    rejects are those of `_read_jsonl_lines`, in the same order."""
    reader = CompiledJsonl if CompiledJsonl.usable(config.fields, path_domain) else FastJsonl
    fast = reader(config.fields, split.uri, path_domain)
    limit = int(config.batch_bytes)
    batch = _Batch(split.uri)
    line_no = 0
    with storage.open(split.uri, "rb", compression=split.compression) as stream:
        if split.start > 0:
            stream.seek(split.start - 1)
        for offset, block in iter_blocks(stream, split.start, split.end):
            if block is None:
                line_no += 1
                items: Iterable[Rows | SlowLine] = [SlowLine(offset, line_no, None)]
            else:
                count, items = fast.block(block, offset, line_no)
                line_no += count
            for item in items:
                pieces = _cut(item, batch.size, limit) if isinstance(item, Rows) else [item]
                for piece in pieces:
                    if isinstance(piece, Rows):
                        batch.add_rows(piece)
                    else:
                        line = piece.line if split.start == 0 else None
                        batch.add(line_result(piece.raw, piece.offset, line, config.fields,
                                               split.uri, path_domain))
                    if batch.size >= limit:
                        yield batch.take()
    if batch:
        yield batch.take()


def _cut(rows: Rows, size: int, limit: int) -> Iterator[Rows]:
    """A block's rows in pieces ending where a batch (now `size` bytes of text) reaches
    `limit`: cut after the row that reaches it, as the line path does, whatever the block."""
    lengths = pc.fill_null(pc.binary_length(rows.texts), 0).to_numpy(zero_copy_only=False)
    ends = size + np.cumsum(lengths, dtype=np.int64)
    lo, threshold = 0, limit
    while lo < len(ends):
        hi = min(int(np.searchsorted(ends, threshold)) + 1, len(ends))
        yield Rows(rows.ids[lo:hi], rows.texts[lo:hi], rows.domains[lo:hi])
        lo, threshold = hi, limit + int(ends[hi - 1])


def _read_jsonl_lines(
    split: Split, config: InputConfig, storage: Storage, path_domain: str | None
) -> Iterator[SplitBatch]:
    """The line-by-line reader: `json.loads` per line. The reference for the block reader."""
    source = split.uri
    whole_file = split.start == 0
    limit = int(config.batch_bytes)
    ids: list[str] = []
    texts: list[str] = []
    domains: list[str] = []
    rejects: list[Reject] = []
    size = 0
    with storage.open(split.uri, "rb", compression=split.compression) as stream:
        if split.start > 0:
            stream.seek(split.start - 1)
        for line_no, (offset, raw) in enumerate(iter_lines(stream, split.start, split.end), 1):
            line = line_no if whole_file else None
            result = line_result(raw, offset, line, config.fields, source, path_domain)
            if isinstance(result, Reject):
                rejects.append(result)
            elif result is not None:
                ids.append(result[0])
                texts.append(result[1])
                domains.append(result[2])
                size += len(result[1])
                if size >= limit:
                    yield SplitBatch(make_table(ids, texts, domains, [source] * len(ids)), rejects)
                    ids, texts, domains, rejects, size = [], [], [], [], 0
    if ids or rejects:
        yield SplitBatch(make_table(ids, texts, domains, [source] * len(ids)), rejects)


class _Batch:
    """One SplitBatch in the making: pyarrow's rows and single lines' rows, in file order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[Rows] = []
        self.lines: list[tuple[str, str, str]] = []
        self.rejects: list[Reject] = []
        self.size = 0

    def __bool__(self) -> bool:
        return bool(self.parts or self.lines or self.rejects)

    def add(self, result: tuple[str, str, str] | Reject | None) -> None:
        if isinstance(result, Reject):
            self.rejects.append(result)
        elif result is not None:
            self.lines.append(result)
            self.size += len(result[1])

    def add_rows(self, rows: Rows) -> None:
        self._flush_lines()
        self.parts.append(rows)
        self.size += pc.sum(pc.binary_length(rows.texts)).as_py() or 0

    def _flush_lines(self) -> None:
        if self.lines:
            columns = zip(*self.lines, strict=True)
            ids, texts, domains = (pa.array(col, pa.string()) for col in columns)
            self.parts.append(Rows(ids, texts, domains))
            self.lines = []

    def take(self) -> SplitBatch:
        self._flush_lines()
        if not self.parts:
            table = make_table([], [], [], [])
        else:  # the blocks' arrays as chunks: no copy of the text
            columns = [pa.chunked_array([getattr(p, c) for p in self.parts], pa.string())
                       for c in ("ids", "texts", "domains")]
            sources = pc.fill_null(pa.nulls(len(columns[0]), pa.string()), self.source)
            table = pa.Table.from_arrays([*columns, sources], schema=BASE_SCHEMA)
        batch = SplitBatch(table, self.rejects)
        self.parts, self.rejects, self.size = [], [], 0
        return batch
