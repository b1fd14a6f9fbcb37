"""Input planning and reading: URIs -> ordered splits -> document batches plus rejects.

A *split* is one task's worth of input: a byte range of an uncompressed JSON Lines file, a
whole compressed file, a run of Parquet row groups, or one Arrow file of a Hugging Face
`save_to_disk` folder. The plan is a pure function of the inputs, so a resumed run sees the
same splits with the same indices, which name every output file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import InputConfig
from siftline.documents import BASE_SCHEMA, UNKNOWN_DOMAIN, make_table
from siftline.errors import InputError
from siftline.io.jsonl import Reject, iter_blocks, iter_lines, line_result
from siftline.io.jsonl_compiled import CompiledJsonl
from siftline.io.jsonl_fast import FastJsonl, Rows, SlowLine
from siftline.io.storage import Storage, is_remote, join

JSONL_FAST = True  # read JSON Lines a block at a time (compiled parser or pyarrow; False: by line)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}


@dataclass(frozen=True)
class Split:
    index: int
    uri: str
    format: str  # jsonl | parquet | arrow
    compression: str | None
    start: int  # byte offset (jsonl) or first row group (parquet); 0 for arrow
    end: int | None  # exclusive; None = to the end
    file_size: int
    fingerprint: str  # size + modification stamp, to notice inputs that changed under a run

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class SplitBatch:
    table: pa.Table  # id, text, domain, source
    rejects: list[Reject]


# -- planning ----------------------------------------------------------------------------------
def detect_format(uri: str) -> tuple[str, str | None]:
    name = uri.rsplit("/", 1)[-1].lower()
    compression = None
    for suffix, codec in COMPRESSIONS.items():
        if name.endswith(suffix):
            compression, name = codec, name[: -len(suffix)]
            break
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl", compression
    if name.endswith(".parquet") and compression is None:
        return "parquet", None
    if name.endswith(".arrow") and compression is None:
        return "arrow", None
    raise InputError(f"{uri}: unknown input format (expected .jsonl[.gz|.zst], .parquet, .arrow)")


def expand_inputs(paths: list[str], storage: Storage) -> list[str]:
    """Resolve globs, folders and Hugging Face `save_to_disk` folders to a sorted file list."""
    files: list[str] = []
    for path in paths:
        if any(ch in path for ch in "*?["):
            matched = [m for m in storage.glob(path) if not _hidden(m) and not storage.isdir(m)]
            if not matched:
                raise InputError(f"input {path}: the pattern matches no file")
            files.extend(matched)
        elif storage.isdir(path):
            files.extend(_expand_folder(path, storage))
        elif storage.exists(path):
            files.append(path)
        else:
            raise InputError(f"input {path}: no such file or folder")
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    return unique


def _expand_folder(path: str, storage: Storage) -> list[str]:
    for marker in ("dataset_dict.json", "state.json"):
        if storage.exists(join(path, marker)):
            return _hf_arrow_files(path, storage)
    found = []
    for uri in storage.find(path):
        if _hidden(uri):
            continue
        try:
            detect_format(uri)
        except InputError:
            continue
        found.append(uri)
    if not found:
        raise InputError(f"input {path}: the folder holds no .jsonl/.parquet/.arrow file")
    return found


def _hidden(uri: str) -> bool:
    """Dotfiles and `_`-prefixed files (markers, temporaries) are never inputs."""
    return uri.rsplit("/", 1)[-1].startswith((".", "_"))


def _hf_arrow_files(path: str, storage: Storage) -> list[str]:
    """The Arrow files of a `Dataset.save_to_disk` (or `DatasetDict`) folder, in order."""
    dict_marker = join(path, "dataset_dict.json")
    if storage.exists(dict_marker):
        splits = json.loads(storage.read_text(dict_marker)).get("splits", [])
        return [f for split in splits for f in _hf_arrow_files(join(path, split), storage)]
    state = json.loads(storage.read_text(join(path, "state.json")))
    files = [join(path, entry["filename"]) for entry in state.get("_data_files", [])]
    if not files:
        raise InputError(f"input {path}: state.json lists no data files")
    return files


def plan_splits(config: InputConfig, storage: Storage, files: list[str]) -> list[Split]:
    splits: list[Split] = []
    for uri in files:
        fmt, compression = ("arrow", None) if config.format == "hf" else detect_format(uri)
        if config.format not in ("auto", "hf") and fmt != config.format:
            raise InputError(f"{uri}: input.format is {config.format} but the file is {fmt}")
        info = storage.info(uri)
        size = int(info.get("size") or 0)
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        fingerprint = f"{size}:{stamp}"
        for start, end in _ranges(uri, fmt, compression, size, int(config.split_bytes), storage):
            splits.append(Split(len(splits), uri, fmt, compression, start, end, size, fingerprint))
    return splits


def _ranges(
    uri: str, fmt: str, compression: str | None, size: int, split_bytes: int, storage: Storage
) -> list[tuple[int, int | None]]:
    if fmt == "jsonl" and compression is None and size > split_bytes:
        starts = list(range(0, size, split_bytes))
        return [(s, s + split_bytes if s + split_bytes < size else None) for s in starts]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with storage.open(uri) as handle:
            meta = pq.ParquetFile(handle).metadata
        ranges, first, acc = [], 0, 0
        for rg in range(meta.num_row_groups):
            acc += meta.row_group(rg).total_byte_size
            if acc >= split_bytes:
                ranges.append((first, rg + 1))
                first, acc = rg + 1, 0
        if first < meta.num_row_groups or not ranges:
            ranges.append((first, None))
        return ranges
    return [(0, None)]


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
        from siftline.io.columnar import read_columnar

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


def check_inputs_reachable(paths: list[str], storage: Storage) -> None:
    """Fail fast, naming the path, when an input (or its S3 bucket) cannot be reached."""
    for path in paths:
        if path.startswith("demo://"):
            continue
        if is_remote(path) and (problem := storage.bucket_problem(path)):
            raise InputError(f"input {path}: {problem}")
