"""Selection: decide each row's `drop_reason` from its persisted columns.

This is the only place rows are dropped, and it never looks at text, so `siftline select` can
re-decide from `OUT/scored/` alone. The reading-time reasons come first, then each stage's in
the order of its declared priority: the first that applies is the one recorded. A stage drops
rows by a mask over its own columns (`drops`, the dedupe stages), by named rules whose
thresholds come from the config (`rules`: the failing rule's name is written beside the
stage's measurements as `<stage>_rule`), or by its global cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import PipelineConfig
from siftline.documents import LOCAL_REASONS
from siftline.selection.cut import Cut, selected_mask
from siftline.stages.spec import StageSpec, by_priority, rule_column

_NULL = pa.scalar(None, pa.string())


def local_reasons(table: pa.Table) -> pa.ChunkedArray:
    """Reasons decided while reading (`empty`, `too_long`): selection cannot undo them."""
    current = table.column("drop_reason")
    is_local = pc.is_in(current, value_set=pa.array(LOCAL_REASONS))
    return pc.if_else(pc.fill_null(is_local, False), current, _NULL)


def stage_drops(spec: StageSpec, table: pa.Table, part: int, cuts: Mapping[str, Cut],
                failed: pa.Array | pa.ChunkedArray | None = None
                ) -> pa.Array | pa.ChunkedArray | None:
    """True where `spec` drops a row; None when it drops nothing (or its columns are absent).
    `failed`: the stage's failing rule names, for stages with `rules`."""
    if spec.drops is not None:
        return spec.drops(table)
    if spec.rules is not None:
        return None if failed is None else pc.is_valid(failed)
    if spec.cut is None:
        return None
    if spec.name not in cuts:
        raise ValueError(f"{spec.name} selection needs its global cut")
    return pa.array(~selected_mask(table, part, cuts[spec.name], spec.cut.column))


def apply_selection(table: pa.Table, specs: Sequence[StageSpec], *, part: int = 0,
                    cuts: Mapping[str, Cut] | None = None,
                    config: PipelineConfig | None = None) -> pa.Table:
    """Recompute `drop_reason` for these stages; the column is null for kept rows. Cut stages
    need their global cuts (`siftline.selection.cut.compute_cut`) and the part index, which
    breaks ties; stages with `rules` need the config (their thresholds), and get their
    `<stage>_rule` column (re)written."""
    reasons = [local_reasons(table)]
    for spec in by_priority(list(specs)):
        failed = None
        if spec.rules is not None:
            if config is None:
                raise ValueError(f"{spec.name} selection needs the config (its thresholds)")
            failed = spec.rules(table, config)
            if failed is not None:
                table = set_column(table, rule_column(spec), pc.cast(failed, pa.string()))
        dropped = stage_drops(spec, table, part, cuts or {}, failed)
        if dropped is not None:
            reasons.append(pc.if_else(dropped, spec.reason, _NULL))
    decided = pc.coalesce(*reasons) if len(reasons) > 1 else reasons[0]
    index = table.column_names.index("drop_reason")
    return table.set_column(index, "drop_reason", pc.cast(decided, pa.string()))


def set_column(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Replace the column `name`, or append it."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


def kept_mask(table: pa.Table) -> pa.ChunkedArray:
    return pc.is_null(table.column("drop_reason"))
