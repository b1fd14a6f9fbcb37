"""Small, shared test helpers: build inputs, configure local runs, read outputs back.

Imported by several test modules (``from helpers import ...``; pytest puts ``tests/`` on the
path through ``conftest.py``). Keep every helper short and free of pipeline internals beyond
the public layout of an output folder (see ``pipeline/layout.py``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from click.testing import Result
from typer.testing import CliRunner

from siftline import PipelineConfig, load_config
from siftline.job.report import MEASURED

PathLike = str | Path
Record = Mapping[str, Any] | bytes
OUTPUT_SUBDIRS = ("data", "scored", "rejects")


def jsonl_bytes(records: Iterable[Record]) -> bytes:
    """JSON Lines payload: dicts are serialised, ``bytes`` items are written verbatim.

    Every record ends with a newline; a ``bytes`` item is taken as the raw line (without its
    newline), so ``b""`` gives a blank line and ``b"\\xff"`` a non-UTF-8 one.
    """
    out = bytearray()
    for rec in records:
        out += rec if isinstance(rec, bytes) else json.dumps(rec).encode("utf-8")
        out += b"\n"
    return bytes(out)


def write_jsonl(path: PathLike, records: Iterable[Record], compression: str | None = None) -> Path:
    """Write records as JSON Lines, optionally ``"gzip"`` or ``"zstd"`` compressed.

    The caller picks the file name (``x.jsonl``, ``x.jsonl.gz``, ``x.jsonl.zst``): the pipeline
    detects the format from the suffix, so a mismatch is deliberate. Parents are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jsonl_bytes(records)
    if compression == "gzip":
        data = gzip.compress(data, mtime=0)
    elif compression == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    elif compression is not None:
        raise ValueError(f"unknown compression {compression!r}")
    path.write_bytes(data)
    return path


def write_parquet(
    path: PathLike, records: list[dict[str, Any]] | pa.Table, row_group_size: int | None = None
) -> Path:
    """Write dicts (or a ready table, for exact column types) as a Parquet file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = records if isinstance(records, pa.Table) else pa.Table.from_pylist(records)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def local_config(
    inputs: PathLike | list[PathLike], output: PathLike, **overrides: Any
) -> PipelineConfig:
    """A validated config that runs in-process (``executor.kind=local``).

    Overrides are dotted keys, passed either as ``**{"input.split_bytes": 1000}`` or with
    double underscores for dots: ``input__split_bytes=1000``. They win over the defaults set
    here, including ``executor.kind``.
    """
    paths = [str(p) for p in inputs] if isinstance(inputs, list) else [str(inputs)]
    data: dict[str, Any] = {
        "input.paths": paths,
        "output.path": str(output),
        "executor.kind": "local",
    }
    data.update({key.replace("__", "."): value for key, value in overrides.items()})
    return load_config(None, data)


def _parquet_dir(output_dir: PathLike, subdir: str) -> pa.Table | None:
    files = sorted((Path(output_dir) / subdir).glob("*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files])


def read_data(output_dir: PathLike) -> pa.Table:
    """Kept documents: ``OUT/data/*.parquet`` concatenated in file-name order.

    A run that kept nothing writes no data shard; that reads as an empty id/text table.
    """
    table = _parquet_dir(output_dir, "data")
    if table is None:
        return pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    return table


def read_scored(output_dir: PathLike) -> pa.Table:
    """Every scored row: ``OUT/scored/*.parquet`` concatenated in file-name order."""
    table = _parquet_dir(output_dir, "scored")
    assert table is not None, f"{output_dir}/scored holds no parquet file"
    return table


def read_rejects(output_dir: PathLike) -> list[dict[str, Any]]:
    """Quarantined records from ``OUT/rejects/*.jsonl`` in file-name then line order."""
    rows: list[dict[str, Any]] = []
    for path in sorted((Path(output_dir) / "rejects").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    return rows


def tree_bytes(output_dir: PathLike, subdirs: Iterable[str] = OUTPUT_SUBDIRS) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under the given subfolders, for equality checks."""
    root = Path(output_dir)
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for sub in subdirs
        for path in sorted((root / sub).rglob("*"))
        if path.is_file()
    }


def uniform_model(folder: Path, vocab: int, tokenizer: Any) -> str:
    """A model folder whose weights are all zero: every next-token distribution is uniform, so
    the NLL is exactly ln(vocab) per token (a scorer's answer known in advance)."""
    import torch

    from siftline.lm.checkpoint import save_model
    from siftline.lm.config import ModelConfig
    from siftline.lm.model import CausalLM

    model = CausalLM(ModelConfig(vocab_size=vocab, d_model=16, n_layers=1, n_heads=2,
                                 context_length=32))
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    save_model(folder, model, tokenizer)
    return str(folder)


def without_measurements(stats: Mapping[str, Any]) -> dict[str, Any]:
    """stats.json less what differs between runs of the same job (wall times, peak RSS)."""
    return {k: v for k, v in stats.items() if k not in MEASURED}


def rechunk(table: pa.Table, cuts: Iterable[int]) -> pa.Table:
    """The same rows as chunks that start at `cuts` (zero-copy slices)."""
    edges = sorted({0, table.num_rows, *cuts})
    return pa.concat_tables(
        [table.slice(a, b - a) for a, b in zip(edges, edges[1:], strict=False)])


def invoke(*args: Any) -> Result:
    """The CLI in-process, as typer's test runner calls it; arguments as strings."""
    from siftline.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])
