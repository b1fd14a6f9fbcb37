"""Siftline's demo corpus: code, tests and docs from Python's own standard library.

Every installation ships tens of MB of real text with natural exact and near duplicates, so the
pipeline can run end to end with no download. Builds are deterministic and cached on disk.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import pathlib
import platform
import random
import re
import shutil
import sys
import sysconfig
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator

import zstandard

MARKER = "_COMPLETE.json"
FORMAT_VERSION = 1
MIN_CHUNK, SOFT_CHUNK, MAX_CHUNK = 2_000, 6_000, 8_000
MIN_DOC_CHARS = 200
SKIP_DIRS = {"site-packages", "__pycache__"}
SKIP_PATHS = {"idlelib/Icons"}
TEST_DIRS = {"test", "tests", "idle_test"}
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
_TOP_LEVEL_DEF = re.compile(r"(?:async\s+def|def|class)\s|@")  # or its first decorator
_CLAUSES = {"handlers", "cases"}

Record = dict[str, str]


def default_cache_dir() -> pathlib.Path:
    """Where demo corpora are cached: ``$SIFTLINE_CACHE/demo`` or ``~/.cache/siftline/demo``."""
    root = os.environ.get("SIFTLINE_CACHE")
    base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "siftline"
    return base / "demo"


def demo_corpus_path(max_bytes: int | None) -> pathlib.Path:
    """Cache folder for one slice; keyed by Python version since the stdlib differs between them."""
    size = "full" if max_bytes is None else str(max_bytes)
    return default_cache_dir() / f"py{sys.version_info[0]}.{sys.version_info[1]}-{size}"


def _stdlib_files(root: pathlib.Path) -> list[str]:
    """Sorted relative POSIX paths of the stdlib's .py files, so the walk order never varies."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = pathlib.Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = [
            d
            for d in dirnames
            if d not in SKIP_DIRS and f"{rel_dir}/{d}".removeprefix("./") not in SKIP_PATHS
        ]
        found += [f"{rel_dir}/{f}".removeprefix("./") for f in filenames if f.endswith(".py")]
    return sorted(found)


def _is_test(rel: str) -> bool:
    """Test modules form their own domain: they read differently from library code."""
    parts = rel.split("/")
    return parts[-1].startswith("test_") or any(p in TEST_DIRS for p in parts[:-1])


def chunk_source(text: str) -> list[str]:
    """Split source into ~2-8 KB chunks at top-level defs or blank lines, never inside a line.

    Concatenating the chunks gives back ``text`` exactly; a single line longer than the maximum
    becomes a chunk of its own.
    """
    chunks: list[str] = []
    current: list[str] = []
    size, prev = 0, ""
    for line in _LINE.findall(text):
        n = len(line) if line.isascii() else len(line.encode("utf-8"))
        if size and (
            size + n > MAX_CHUNK
            or (size >= MIN_CHUNK and _TOP_LEVEL_DEF.match(line) and prev[:1] != "@")
            or (size >= SOFT_CHUNK and not prev.strip())
        ):
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += n
        prev = line
    if current:
        chunks.append("".join(current))
    return chunks


def _module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _collect_docs(body: list[ast.stmt], prefix: str, out: list[tuple[str, str]]) -> None:
    """Append (qualified name, docstring) for defs in ``body``, looking inside if/try blocks."""
    for node in body:
        if isinstance(node, _DEFS):
            doc = ast.get_docstring(node)
            if doc:
                out.append((prefix + node.name, doc))
            _collect_docs(node.body, f"{prefix}{node.name}.", out)
            continue
        for field in ("body", "handlers", "orelse", "finalbody", "cases"):
            for child in getattr(node, field, []):
                _collect_docs(child.body if field in _CLAUSES else [child], prefix, out)


def module_docs(text: str, module: str) -> str | None:
    """One docs record per module: its docstrings, each headed by its qualified name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    docs: list[tuple[str, str]] = []
    module_doc = ast.get_docstring(tree)
    if module_doc:
        docs.append((module, module_doc))
    _collect_docs(tree.body, "", docs)
    if sum(len(doc) for _, doc in docs) < MIN_DOC_CHARS:
        return None
    return "\n\n".join(f"{name}\n{doc}" for name, doc in docs) + "\n"


def _file_records(rel: str, text: str) -> Iterator[Record]:
    domain = "tests" if _is_test(rel) else "code"
    for i, chunk in enumerate(c for c in chunk_source(text) if c.strip()):
        yield {"id": f"{domain}/{rel}#{i:04d}", "text": chunk, "domain": domain}


def collect_records(root: pathlib.Path) -> list[Record]:
    """All records in natural order: the sorted file walk, then module docs, then pydoc topics."""
    records: list[Record] = []
    docs: list[Record] = []
    for rel in _stdlib_files(root):
        try:
            text = (root / rel).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue  # a few test files are deliberately in other encodings
        records += _file_records(rel, text)
        doc = None if _is_test(rel) else module_docs(text, _module_name(rel))
        if doc:
            docs.append({"id": f"docs/{rel}", "text": doc, "domain": "docs"})
    from pydoc_data.topics import topics  # lazily: a 700 KB module

    topics_docs = [
        {"id": f"docs/pydoc_topics/{k}", "text": topics[k], "domain": "docs"}
        for k in sorted(topics)
    ]
    return records + docs + topics_docs


def _take(records: list[Record], max_bytes: int | None) -> list[Record]:
    """The longest prefix whose total UTF-8 text size stays within ``max_bytes``."""
    if max_bytes is None:
        return records
    totals = itertools.accumulate(len(r["text"].encode("utf-8")) for r in records)
    return [r for r, total in zip(records, totals, strict=True) if total <= max_bytes]


def _write_shards(records: list[Record], folder: pathlib.Path, shard_bytes: int) -> list[str]:
    """Write ~``shard_bytes`` uncompressed shards, each a single deterministic zstd frame."""
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=False, write_content_size=True)
    names: list[str] = []
    lines: list[bytes] = []
    size = 0
    for i, record in enumerate(records):
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        lines.append(line)
        size += len(line)
        if size >= shard_bytes or i == len(records) - 1:
            names.append(f"demo-{len(names):05d}.jsonl.zst")
            (folder / names[-1]).write_bytes(compressor.compress(b"".join(lines)))
            lines, size = [], 0
    return names


def _params(max_bytes: int | None, shard_bytes: int) -> dict[str, object]:
    """What a cached build must match; ``format`` changes whenever the record layout does."""
    return {
        "format": FORMAT_VERSION,
        "max_bytes": max_bytes,
        "shard_bytes": shard_bytes,
        "python": platform.python_version(),
    }


def _cached_shards(dest: pathlib.Path, params: dict[str, object]) -> list[pathlib.Path] | None:
    """The shards of a finished build with the same parameters, else None."""
    try:
        marker = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or any(marker.get(k) != v for k, v in params.items()):
        return None
    shards = sorted(dest / name for name in marker.get("shards", []))
    return shards if all(p.is_file() for p in shards) else None


def _check_replaceable(dest: pathlib.Path) -> None:
    """Refuse to wipe a folder that is not a previous build: ``dest`` may be a user's typo."""
    if dest.exists() and not (dest / MARKER).is_file() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty and holds no demo corpus; not replacing it")


def _write_build(
    records: list[Record], folder: pathlib.Path, params: dict[str, object], shard_bytes: int
) -> list[str]:
    """Shards first, marker last: the marker is what says the build is complete."""
    names = _write_shards(records, folder, shard_bytes)
    marker = {
        **params,
        "records": dict(sorted(Counter(r["domain"] for r in records).items())),
        "text_bytes": sum(len(r["text"].encode("utf-8")) for r in records),
        "shards": names,
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    folder.chmod(0o755)
    return names


def _install(tmp: pathlib.Path, dest: pathlib.Path) -> None:
    """Move a finished build into place; readers never see a half-written ``dest``."""
    if dest.exists():
        old = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old / dest.name)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, dest)


def build_demo_corpus(
    dest: str | pathlib.Path, *, max_bytes: int | None = None, shard_bytes: int = 4_000_000
) -> list[pathlib.Path]:
    """Build (once; cached by a marker file) and return the sorted list of .jsonl.zst shards."""
    dest = pathlib.Path(dest)
    params = _params(max_bytes, shard_bytes)
    cached = _cached_shards(dest, params)
    if cached is not None:
        return cached
    _check_replaceable(dest)
    records = collect_records(pathlib.Path(sysconfig.get_paths()["stdlib"]))
    random.Random(0).shuffle(records)
    records = _take(records, max_bytes)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        names = _write_build(records, tmp, params, shard_bytes)
        _install(tmp, dest)
    except OSError:
        cached = _cached_shards(dest, params)  # a concurrent build may have won the rename
        if cached is None:
            raise
        return cached
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already once installed
    return sorted(dest / name for name in names)
