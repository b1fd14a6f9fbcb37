"""A finished run's folder, read back: its manifest, and a part's scores with the text re-read.

Scores and dedupe clusters live in `OUT/scored/`; the text of a part is re-read from its input
(recorded with its fingerprint in the manifest), the way Dolma joins documents with their
attribute files. An input that changed since scoring is an error, never a silent mismatch.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from siftline.config import PipelineConfig
from siftline.errors import ConfigError
from siftline.io.readers import read_split
from siftline.io.split import Split
from siftline.io.storage import Storage
from siftline.io.writers import read_json
from siftline.layout import Layout


def load_finished_manifest(output: str, storage: Storage) -> dict[str, Any]:
    layout = Layout.for_output(output)
    if not storage.exists(layout.manifest):
        raise ConfigError(f"{output}: no manifest.json; is this a siftline output folder?")
    manifest = read_json(storage, layout.manifest)
    if manifest.get("status") not in ("complete", "selecting"):
        raise ConfigError(f"{output}: the run is not complete; finish it with `siftline run`")
    return manifest


def reject_examples(output: str, manifest: dict[str, Any], storage: Storage,
                    limit: int) -> list[dict[str, Any]]:
    """The first `limit` quarantined records (OUT/rejects/, in part then line order), for
    `inspect`: where each was and what was wrong with it."""
    layout, examples = Layout.for_output(output), []
    for rel in manifest["outputs"]["rejects"]:
        with storage.open(layout.path(rel), "rb") as handle:
            for line in handle:
                if len(examples) == limit:
                    return examples
                if line.strip():
                    examples.append(json.loads(line))
    return examples


def read_scored(layout: Layout, storage: Storage, part: int,
                columns: list[str] | None = None) -> pa.Table:
    """A part's scored rows: ids, score columns, drop_reason (no text)."""
    with storage.open(layout.path(layout.scored_rel(part))) as handle:
        return pq.read_table(handle, columns=columns)


def scored_schema(layout: Layout, storage: Storage, part: int) -> pa.Schema:
    with storage.open(layout.path(layout.scored_rel(part))) as handle:
        return pq.read_schema(handle)


def read_split_text(split: Split, config: PipelineConfig, storage: Storage) -> pa.Table:
    """(id, text) of a split's documents, re-read from its unchanged input."""
    if storage.fingerprint(split.uri) != split.fingerprint:
        raise ConfigError(f"input {split.uri} changed since it was scored; run the job again")
    texts = [batch.table.select(["id", "text"]) for batch in read_split(split, config.input,
                                                                          storage)]
    if not texts:
        return pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    return pa.concat_tables(texts)


def part_with_text(split: Split, config: PipelineConfig, layout: Layout,
                   storage: Storage) -> pa.Table:
    scored = read_scored(layout, storage, split.index)
    text = read_split_text(split, config, storage)
    if text.column("id") != scored.column("id"):
        raise ConfigError(f"input {split.uri} no longer matches its scored part; run the job again")
    text_field = pa.field("text", pa.string(), nullable=False)
    return scored.add_column(1, text_field, text.column("text").combine_chunks())
