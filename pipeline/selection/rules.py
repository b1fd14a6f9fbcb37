"""Selection: decide each row's `drop_reason` from its persisted columns.

This is the only place rows are dropped, and it never looks at text, so `siftline select` can
re-decide from `OUT/scored/` alone. The reading-time reasons come first, then each stage's in
the order of its declared priority: the first that applies is the one recorded. A stage drops
rows by a rule over its own columns (`drops`, the dedupe stages) or by its global cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from siftline.documents import LOCAL_REASONS
from siftline.selection.cut import Cut, selected_mask
from siftline.stages.spec import StageSpec, by_priority

_NULL = pa.scalar(None, pa.string())


def local_reasons(table: pa.Table) -> pa.ChunkedArray:
    """Reasons decided while reading (`empty`, `too_long`): selection cannot undo them."""
    current = table.column("drop_reason")
    is_local = pc.is_in(current, value_set=pa.array(LOCAL_REASONS))
    return pc.if_else(pc.fill_null(is_local, False), current, _NULL)


def stage_drops(spec: StageSpec, table: pa.Table, part: int,
                cuts: Mapping[str, Cut]) -> pa.Array | pa.ChunkedArray | None:
    """True where `spec` drops a row; None when it drops nothing (or its columns are absent)."""
    if spec.drops is not None:
        return spec.drops(table)
    if spec.cut is None:
        return None
    if spec.name not in cuts:
        raise ValueError(f"{spec.name} selection needs its global cut")
    return pa.array(~selected_mask(table, part, cuts[spec.name], spec.cut.column))


def apply_selection(table: pa.Table, specs: Sequence[StageSpec], *, part: int = 0,
                    cuts: Mapping[str, Cut] | None = None) -> pa.Table:
    """Recompute `drop_reason` for these stages; the column is null for kept rows. Cut stages
    need their global cuts (`siftline.selection.cut.compute_cut`) and the part index, which
    breaks ties."""
    reasons = [local_reasons(table)]
    for spec in by_priority(list(specs)):
        dropped = stage_drops(spec, table, part, cuts or {})
        if dropped is not None:
            reasons.append(pc.if_else(dropped, spec.reason, _NULL))
    decided = pc.coalesce(*reasons) if len(reasons) > 1 else reasons[0]
    index = table.column_names.index("drop_reason")
    return table.set_column(index, "drop_reason", pc.cast(decided, pa.string()))


def kept_mask(table: pa.Table) -> pa.ChunkedArray:
    return pc.is_null(table.column("drop_reason"))
