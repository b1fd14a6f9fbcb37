"""CoLoR-Filter's global selection: the top 1/tau of candidates by `color_score`, or the best
documents up to a token or character budget, globally or within each domain.

Candidates are the rows no earlier rule dropped (empty, too long, duplicates), so duplicates do
not take places. Order is descending score, ties broken by (id, part, row) — deterministic and
independent of how the corpus was split. The cut is stored as the last kept key per group, so
each part decides its own rows from the cut alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import ColorFilterConfig
from siftline.stages.color_filter import SCORE_COLUMN, TOKENS_COLUMN

ALL = "*"
CANDIDATE_SCHEMA = pa.schema([("score", pa.float64()), ("id", pa.string()), ("part", pa.int32()),
                              ("row", pa.int64()), ("domain", pa.string()),
                              ("tokens", pa.int64()), ("chars", pa.int64())])


def candidates(table: pa.Table, part: int, score_column: str = SCORE_COLUMN,
               tokens_column: str | None = TOKENS_COLUMN) -> pa.Table:
    """Rows of one part still in play (drop_reason null), with what the cut needs (the score
    column is a parameter so PreSelect's cut shares this code; no token column -> 0 tokens)."""
    keep = pc.is_null(table.column("drop_reason"))
    rows = pa.array(np.arange(table.num_rows), pa.int64()).filter(
        keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep)
    picked = table.filter(keep)
    tokens = (pc.fill_null(picked.column(tokens_column), 0) if tokens_column is not None
              else pa.array(np.zeros(len(rows), np.int64)))
    return pa.table({
        "score": picked.column(score_column),
        "id": picked.column("id"),
        "part": pa.array(np.full(len(rows), part, np.int32)),
        "row": rows,
        "domain": picked.column("domain"),
        "tokens": tokens,
        "chars": picked.column("n_chars"),
    }, schema=CANDIDATE_SCHEMA)


def _order(table: pa.Table) -> pa.Table:
    """Best first: descending score (nulls last), then id, part, row ascending."""
    key = pc.fill_null(table.column("score"), float("-inf"))
    keyed = table.append_column("_key", key)
    ordered = keyed.sort_by([("_key", "descending"), ("id", "ascending"), ("part", "ascending"),
                             ("row", "ascending")])
    return ordered.drop_columns(["_key"])


def _n_keep(ordered: pa.Table, rule: str, amount: float, share: float) -> int:
    scored = ordered.num_rows - ordered.column("score").null_count
    if rule == "tau":
        return min(scored, math.floor(ordered.num_rows / amount))
    sizes = ordered.column("tokens" if rule == "tokens" else "chars").to_numpy()[:scored]
    return int(np.searchsorted(np.cumsum(sizes), amount * share, side="right"))


def compute_cut(cands: pa.Table, config: ColorFilterConfig) -> dict[str, Any]:
    """The selection as data: per group, the last kept key and the counts."""
    rule, amount = config.rule()
    groups = sorted(set(cands.column("domain").to_pylist())) if config.per_domain else [ALL]
    total = max(cands.num_rows, 1)
    cut: dict[str, Any] = {"rule": rule, "amount": amount, "per_domain": config.per_domain,
                           "groups": {}}
    for group in groups:
        rows = cands if group == ALL else cands.filter(pc.equal(cands.column("domain"), group))
        ordered = _order(rows)
        keep = _n_keep(ordered, rule, amount, rows.num_rows / total)
        last = ordered.slice(keep - 1, 1).to_pylist()[0] if keep else None
        cut["groups"][group] = {
            "candidates": rows.num_rows,
            "kept": keep,
            "last": None if last is None else [last["score"], last["id"], last["part"],
                                               last["row"]],
        }
    return cut


def selected_mask(table: pa.Table, part: int, cut: dict[str, Any],
                  score_column: str = SCORE_COLUMN) -> np.ndarray:
    """True where a row is at or above its group's cut (its drop_reason is not consulted)."""
    n = table.num_rows
    scores = table.column(score_column).to_numpy(zero_copy_only=False).astype(np.float64)
    domains = (np.array(table.column("domain").to_pylist(), dtype=object) if cut["per_domain"]
               else np.full(n, ALL, dtype=object))
    out = np.zeros(n, dtype=bool)
    ids: list[str] | None = None
    for name, group in cut["groups"].items():
        if group["last"] is None:
            continue
        score, last_id, last_part, last_row = group["last"]
        in_group = domains == name
        out |= in_group & (scores > score)
        for row in np.flatnonzero(in_group & (scores == score)):  # ties: compare the keys
            ids = ids if ids is not None else table.column("id").to_pylist()
            out[row] = (ids[row], part, int(row)) <= (last_id, last_part, last_row)
    return out
