"""Selection: decide each row's `drop_reason` from its persisted columns.

This is the only place rows are dropped, and it never looks at text, so `siftline select` can
re-decide from `OUT/scored/` alone. Reasons apply in the priority order of
`siftline.documents.DROP_REASONS`: the first that applies is the one recorded.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from siftline.documents import LOCAL_REASONS
from siftline.stages.exact_dedupe import REP_COLUMN
from siftline.stages.near_dedupe import IS_REP_COLUMN

_NULL = pa.scalar(None, pa.string())


def local_reasons(table: pa.Table) -> pa.ChunkedArray:
    """Reasons decided while reading (`empty`, `too_long`): selection cannot undo them."""
    current = table.column("drop_reason")
    is_local = pc.is_in(current, value_set=pa.array(LOCAL_REASONS))
    return pc.if_else(pc.fill_null(is_local, False), current, _NULL)


def apply_selection(table: pa.Table, stages: list[str], *, part: int = 0,
                    color_cut: dict[str, Any] | None = None,
                    preselect_cut: dict[str, Any] | None = None) -> pa.Table:
    """Recompute `drop_reason` for the enabled stages; the column is null for kept rows.

    `color_filter` and `preselect` need their global cuts (`compute_cut` in
    `siftline.selection.color` / `.preselect`) and the part index, which breaks ties."""
    reasons = [local_reasons(table)]
    if "exact_dedupe" in stages and REP_COLUMN in table.column_names:
        is_dup = pc.is_valid(table.column(REP_COLUMN))
        reasons.append(pc.if_else(is_dup, "exact_duplicate", _NULL))
    if "near_dedupe" in stages and IS_REP_COLUMN in table.column_names:
        is_near = pc.invert(table.column(IS_REP_COLUMN))
        reasons.append(pc.if_else(is_near, "near_duplicate", _NULL))
    if "preselect" in stages:
        if preselect_cut is None:
            raise ValueError("preselect selection needs the global cut")
        from siftline.selection.preselect import selected_mask as preselect_mask

        chosen = pa.array(preselect_mask(table, part, preselect_cut))
        reasons.append(pc.if_else(chosen, _NULL, "preselect"))
    if "color_filter" in stages:
        if color_cut is None:
            raise ValueError("color_filter selection needs the global cut")
        from siftline.selection.color import selected_mask

        chosen = pa.array(selected_mask(table, part, color_cut))
        reasons.append(pc.if_else(chosen, _NULL, "color_filter"))
    decided = pc.coalesce(*reasons) if len(reasons) > 1 else reasons[0]
    index = table.column_names.index("drop_reason")
    return table.set_column(index, "drop_reason", pc.cast(decided, pa.string()))


def kept_mask(table: pa.Table) -> pa.ChunkedArray:
    return pc.is_null(table.column("drop_reason"))
