"""Phase 3, per part: decide drop reasons, write the scored part and the kept shards.

Used by `run` (the part comes from the staged Arrow file) and by `select` (scores from
`OUT/scored/`, text re-read from the input), so both write byte-identical files for the same
decisions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import PipelineConfig
from pipeline.documents import BASE_SCHEMA
from pipeline.io.storage import Storage
from pipeline.io.writers import split_by_bytes, write_json, write_parquet
from pipeline.layout import Layout
from pipeline.selection.rules import apply_selection, kept_mask
from pipeline.stages.near_dedupe import BANDS_COLUMN, SIGNATURE_COLUMN

DATA_COLUMNS = BASE_SCHEMA.names


def finalize_table(
    table: pa.Table, part: int, config: PipelineConfig, layout: Layout, storage: Storage,
    color_cut: dict[str, Any] | None = None, preselect_cut: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `scored/` and `data/` files for one part and return its completion record."""
    table = apply_selection(table, config.stages.enabled(), part=part, color_cut=color_cut,
                            preselect_cut=preselect_cut)
    compression = config.output.compression
    internal = {"text", BANDS_COLUMN}
    if not config.stages.near_dedupe.keep_signatures:
        internal.add(SIGNATURE_COLUMN)
    scored_cols = [name for name in table.column_names if name not in internal]
    scored = write_parquet(storage, layout.root, layout.scored_rel(part),
                           table.select(scored_cols), compression)
    kept = table.filter(kept_mask(table))
    shards = split_by_bytes(kept, int(config.output.shard_bytes), "n_bytes")
    data = [
        write_parquet(storage, layout.root, layout.data_rel(part, j),
                      shard.select(DATA_COLUMNS), compression).to_dict()
        for j, shard in enumerate(shards)
    ]
    return {
        "part": part,
        "rows": table.num_rows,
        "kept": kept.num_rows,
        "dropped": _dropped(table),
        "by_domain": _by_domain(table),
        "scored": scored.to_dict(),
        "data": data,
    }


def _dropped(table: pa.Table) -> dict[str, int]:
    reasons = table.column("drop_reason").drop_null().to_pylist()
    return dict(sorted(Counter(reasons).items()))


def _by_domain(table: pa.Table) -> dict[str, dict[str, int]]:
    stats: dict[str, dict[str, int]] = defaultdict(
        lambda: {"input": 0, "kept": 0, "chars_in": 0, "chars_kept": 0}
    )
    kept = pc.is_null(table.column("drop_reason")).to_pylist()
    domains = table.column("domain").to_pylist()
    chars = table.column("n_chars").to_pylist()
    for domain, is_kept, n in zip(domains, kept, chars, strict=True):
        entry = stats[domain]
        entry["input"] += 1
        entry["chars_in"] += n
        if is_kept:
            entry["kept"] += 1
            entry["chars_kept"] += n
    return {name: stats[name] for name in sorted(stats)}


def save_record(record: dict[str, Any], layout: Layout, storage: Storage) -> None:
    write_json(storage, layout.final_done(record["part"]), record)
