"""Input planning: the configured paths -> files -> ordered splits.

Paths are files, globs, folders (searched recursively), Hugging Face `save_to_disk` folders or
the built-in demo corpus (`demo://stdlib[?max_bytes=N]`, built on first use). The plan is a pure
function of the inputs, so a resumed run sees the same splits with the same indices.
`plan_input` is the whole sequence, for whoever reads a corpus outside a job.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq

from siftline.config import InputConfig
from siftline.demo.corpus import build_demo_corpus, default_cache_dir, demo_corpus_path
from siftline.errors import ConfigError, InputError
from siftline.io.split import Split
from siftline.io.storage import Storage, is_remote, join

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}


def plan_input(config: InputConfig, storage: Storage) -> list[Split]:
    """Reachable -> demo corpora resolved -> files -> splits; a problem is a ConfigError."""
    try:
        check_inputs_reachable(config.paths, storage)
        files = expand_inputs(resolve_paths(config.paths), storage)
        return plan_splits(config, storage, files)
    except InputError as exc:
        raise ConfigError(str(exc)) from None


def resolve_demo(path: str) -> str:
    """`demo://stdlib[?max_bytes=N]` -> the cached demo corpus folder (built on first use)."""
    parsed = urlparse(path)
    if parsed.netloc != "stdlib":
        raise ConfigError(f"input.paths: unknown demo corpus {path!r} (use demo://stdlib)")
    query = parse_qs(parsed.query)
    unknown = set(query) - {"max_bytes"}
    if unknown:
        raise ConfigError(f"input.paths: {path!r} has unknown parameter(s) {sorted(unknown)}")
    max_bytes = int(query["max_bytes"][0]) if "max_bytes" in query else None
    dest = default_cache_dir() / demo_corpus_path(max_bytes)
    build_demo_corpus(dest, max_bytes=max_bytes)
    return str(dest)


def resolve_paths(paths: list[str]) -> list[str]:
    return [resolve_demo(p) if p.startswith("demo://") else p for p in paths]


def split_codec(uri: str) -> tuple[str, str | None]:
    """The lower-case file name without its compression suffix, and that compression."""
    name = uri.rsplit("/", 1)[-1].lower()
    for suffix, codec in COMPRESSIONS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], codec
    return name, None


def detect_format(uri: str) -> tuple[str, str | None]:
    name, compression = split_codec(uri)
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
            matched = [m for m in storage.glob(path) if not hidden(m) and not storage.isdir(m)]
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
        if hidden(uri):
            continue
        try:
            detect_format(uri)
        except InputError:
            continue
        found.append(uri)
    if not found:
        raise InputError(f"input {path}: the folder holds no .jsonl/.parquet/.arrow file")
    return found


def hidden(uri: str) -> bool:
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


def check_inputs_reachable(paths: list[str], storage: Storage) -> None:
    """Fail fast, naming the path, when an input (or its S3 bucket) cannot be reached."""
    for path in paths:
        if path.startswith("demo://"):
            continue
        if is_remote(path) and (problem := storage.bucket_problem(path)):
            raise InputError(f"input {path}: {problem}")
