"""Phase 3, per part: decide drop reasons, write the scored part and the kept shards.

Used by `run` (the part comes from the staged Arrow file) and by `select` (scores from
`OUT/scored/`, text re-read from the input), so both write byte-identical files for the same
decisions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import PipelineConfig
from siftline.documents import BASE_SCHEMA
from siftline.io.storage import PendingFile, Storage
from siftline.io.writers import split_by_bytes, write_json, write_parquet
from siftline.layout import Layout
from siftline.selection.cut import Cut
from siftline.selection.rules import apply_selection, kept_mask
from siftline.stages.spec import StageSpec, rule_column

DATA_COLUMNS = BASE_SCHEMA.names
RUN_ROWS = 8


def finalize_table(
    table: pa.Table, part: int, config: PipelineConfig, specs: list[StageSpec], layout: Layout,
    storage: Storage, cuts: dict[str, Cut], pending: list[PendingFile] | None = None,
) -> dict[str, Any]:
    """Write `scored/` and `data/` files for one part and return its completion record. With
    `pending`, the local files are left for the caller to commit before saving the record."""
    table = apply_selection(table, specs, part=part, cuts=cuts, config=config)
    compression = config.output.compression
    internal = {"text"}.union(*(spec.scratch(config) for spec in specs))
    scored_cols = [name for name in table.column_names if name not in internal]
    scored = write_parquet(storage, layout.root, layout.scored_rel(part),
                           table.select(scored_cols), compression, pending)
    kept = kept_rows(table, kept_mask(table))
    shards = split_by_bytes(kept, int(config.output.shard_bytes), "n_bytes")
    data = [
        write_parquet(storage, layout.root, layout.data_rel(part, j),
                      shard.select(DATA_COLUMNS), compression, pending).to_dict()
        for j, shard in enumerate(shards)
    ]
    return {
        "part": part,
        "rows": table.num_rows,
        "kept": kept.num_rows,
        "dropped": _dropped(table),
        "rules": _rules(table, specs),
        "by_domain": _by_domain(table),
        "scored": scored.to_dict(),
        "data": data,
    }


def kept_rows(table: pa.Table, mask: pa.ChunkedArray) -> pa.Table:
    """The kept rows as slices of the part, not a copy of its text: a shard's bytes do not
    depend on its chunks (`parquet_bytes`). A selection so fragmented that the slices would
    cost more than the copy (runs under RUN_ROWS rows on average) is copied."""
    keep = mask.to_numpy().astype(np.int8)
    edges = np.flatnonzero(np.diff(keep, prepend=0, append=0))
    starts, ends = edges[0::2].tolist(), edges[1::2].tolist()
    if len(starts) * RUN_ROWS > table.num_rows:
        return table.filter(mask)
    if not starts:
        return table.slice(0, 0)
    return pa.concat_tables([table.slice(a, b - a) for a, b in zip(starts, ends, strict=True)])


def _dropped(table: pa.Table) -> dict[str, int]:
    reasons = table.column("drop_reason").drop_null().to_pylist()
    return dict(sorted(Counter(reasons).items()))


def _rules(table: pa.Table, specs: list[StageSpec]) -> dict[str, dict[str, int]]:
    """Per rule stage, its dropped rows by the rule that failed (`<stage>_rule`)."""
    counts: dict[str, dict[str, int]] = {}
    for spec in specs:
        column = rule_column(spec)
        if spec.rules is None or column not in table.column_names:
            continue
        mine = pc.fill_null(pc.equal(table.column("drop_reason"), spec.reason), False)
        rules = table.column(column).filter(mine).to_pylist()
        counts[spec.name] = dict(sorted(Counter(rules).items()))
    return counts


def _by_domain(table: pa.Table) -> dict[str, dict[str, int]]:
    """Per domain: rows in, kept, and their characters (numpy sums over the domain codes)."""
    encoded = pc.dictionary_encode(table.column("domain").combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    names = encoded.dictionary.to_pylist()
    kept = pc.is_null(table.column("drop_reason")).to_numpy()
    chars = table.column("n_chars").to_numpy()

    def per_domain(values: np.ndarray) -> list[int]:
        sums = np.zeros(len(names), np.int64)
        np.add.at(sums, codes, values)
        return sums.tolist()

    rows = zip(names, per_domain(np.ones(len(codes), np.int64)), per_domain(kept.astype(np.int64)),
               per_domain(chars), per_domain(np.where(kept, chars, 0)), strict=True)
    return {name: {"input": n_in, "kept": n_kept, "chars_in": c_in, "chars_kept": c_kept}
            for name, n_in, n_kept, c_in, c_kept in sorted(rows)}


def save_record(record: dict[str, Any], layout: Layout, storage: Storage) -> None:
    """After the part's files are durable; the record itself need not be (`read_record`)."""
    write_json(storage, layout.final_done(record["part"]), record, durable=False)
