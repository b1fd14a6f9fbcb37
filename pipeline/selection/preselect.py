"""PreSelect's global selection: the top share of the candidates' characters by
`preselect_score` (the paper keeps 10%), or every row at or above a threshold; globally or
within each domain.

Candidates are the rows no earlier rule dropped (empty, too long, duplicates). Rows are ordered
by descending score, ties broken by (id, part, row) as the CoLoR-Filter cut does, and kept while
the cumulative characters stay within `keep` x the group's characters. The cut is stored as the
last kept key per group, so each part decides its own rows from the cut alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.preselect.config import PreselectConfig
from siftline.selection import color
from siftline.stages.preselect_score import SCORE_COLUMN

ALL = color.ALL


def candidates(table: pa.Table, part: int) -> pa.Table:
    """Rows of one part still in play, with score, key, domain and characters."""
    return color.candidates(table, part, score_column=SCORE_COLUMN, tokens_column=None)


def n_keep(ordered: pa.Table, rule: str, amount: float) -> tuple[int, float | None]:
    """(rows kept, character budget) for candidates already in best-first order."""
    scores = ordered.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    scored = int(np.count_nonzero(~np.isnan(scores)))
    if rule == "threshold":
        return int(np.count_nonzero(scores[:scored] >= amount)), None
    chars = ordered.column("chars").to_numpy().astype(np.int64)
    budget = amount * float(chars.sum())
    return int(np.searchsorted(np.cumsum(chars[:scored]), budget, side="right")), budget


def compute_cut(cands: pa.Table, config: PreselectConfig) -> dict[str, Any]:
    """The selection as data: per group, the last kept key, counts and characters."""
    rule, amount = config.rule()
    domains = cands.column("domain")
    groups = sorted(set(domains.to_pylist())) if config.per_domain else [ALL]
    cut: dict[str, Any] = {"rule": rule, "amount": amount, "per_domain": config.per_domain,
                           "groups": {}}
    for group in groups:
        rows = cands if group == ALL else cands.filter(pc.equal(domains, group))
        ordered = color._order(rows)
        keep, budget = n_keep(ordered, rule, amount)
        chars = ordered.column("chars").to_numpy().astype(np.int64)
        last = ordered.slice(keep - 1, 1).to_pylist()[0] if keep else None
        cut["groups"][group] = {
            "candidates": rows.num_rows,
            "kept": keep,
            "chars": int(chars.sum()),
            "chars_kept": int(chars[:keep].sum()),
            "budget_chars": budget,
            "last": None if last is None else [last["score"], last["id"], last["part"],
                                               last["row"]],
        }
    return cut


def selected_mask(table: pa.Table, part: int, cut: dict[str, Any]) -> np.ndarray:
    """True where a row is at or above its group's cut."""
    return color.selected_mask(table, part, cut, score_column=SCORE_COLUMN)
