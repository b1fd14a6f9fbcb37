"""The candidate pool of a finished run: the documents a selection method chooses from.

Candidates are the rows every rule but the score cuts keeps (not quarantined, not empty or too
long, not a duplicate): the set the first cut ranks. Documents held out as the evaluation
target (a corpus domain's hold-out) are left out, so no method can train on the text it is
measured on. Text is re-read from the unchanged inputs, as `siftline select` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.color.target import is_held_out
from siftline.config import PipelineConfig, TargetConfig
from siftline.io.split import Split
from siftline.io.storage import Storage
from siftline.layout import Layout
from siftline.outputs import load_finished_manifest, part_with_text
from siftline.selection.rules import apply_selection
from siftline.stages.registry import enabled_specs

POOL_COLUMNS = ("id", "text", "domain", "part", "row", "run_kept", "n_chars")



@dataclass(frozen=True)
class Pool:
    table: pa.Table  # id, text, domain, part, row, run_kept, n_chars + the score columns present
    candidates: int  # rows every non-scoring rule keeps, before the target hold-out
    held_out: int  # of those, target documents left out

    @property
    def scores(self) -> list[str]:
        """The score columns a method can rank by: every cut stage's the run computed."""
        return [c for c in self.table.column_names if c not in POOL_COLUMNS]


def load_pool(output: str, config: PipelineConfig, storage: Storage,
              target: TargetConfig | None) -> Pool:
    layout = Layout.for_output(output)
    manifest = load_finished_manifest(output, storage)
    specs = enabled_specs(config)
    rules = [spec for spec in specs if spec.cut is None]
    score_columns = [spec.cut.column for spec in specs if spec.cut is not None]
    parts, candidates, held = [], 0, 0
    for split in (Split(**s) for s in manifest["splits"]):
        table = part_with_text(split, config, layout, storage)
        run_kept = pc.is_null(table.column("drop_reason"))
        ruled = apply_selection(table, rules, config=config)
        keep = pc.is_null(ruled.column("drop_reason")).to_numpy(zero_copy_only=False)
        candidates += int(keep.sum())
        if target is not None and target.domain is not None:
            ids, domains = table.column("id").to_pylist(), table.column("domain").to_pylist()
            target_rows = np.array([is_held_out(i, d, target) for i, d in zip(ids, domains,
                                                                              strict=True)],
                                   dtype=bool).reshape(-1)
            held += int((keep & target_rows).sum())
            keep &= ~target_rows
        columns = {"id": table.column("id"), "text": table.column("text"),
                   "domain": table.column("domain"),
                   "part": pa.array(np.full(table.num_rows, split.index, np.int32)),
                   "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
                   "run_kept": run_kept,
                   "n_chars": pc.utf8_length(table.column("text")).cast(pa.int64())}
        columns.update({c: table.column(c) for c in score_columns if c in table.column_names})
        parts.append(pa.table(columns).filter(pa.array(keep)))
    if not parts:
        raise ValueError(f"{output}: the run has no input splits")
    return Pool(pa.concat_tables(parts).combine_chunks(), candidates, held)
