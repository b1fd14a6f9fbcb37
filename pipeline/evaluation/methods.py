"""Selection methods compared by `eval-selection`, each a deterministic choice of pool rows.

- `random`: a seeded shuffle of the whole pool, cut once it holds the largest training budget
  (no document repeats where the pool allows): the baseline every method is measured against.
- `run`: the run's own selection (its kept rows).
- `color:TAU`: the top 1/TAU of the pool by `color_score` (CoLoR-Filter's rule).
- `preselect:KEEP`: the best documents by `preselect_score` while their characters stay within
  KEEP x the pool's characters (PreSelect's rule).
- `combined:TAU` (both scores present): the top 1/TAU by the mean of the two scores' rank
  percentiles, so neither score's scale dominates; the same size as `color:TAU`.
- `selected`: a dataset given as such (`evaluation.selected`), against `evaluation.baseline`.
Ties in score are broken by (id, part, row), as the pipeline's cut does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.evaluation.pool import Pool

RANDOM = "random"


@dataclass(frozen=True)
class Method:
    kind: str  # "random" | "run" | "color" | "preselect" | "combined" | "selected"
    amount: float | None = None  # tau (color, combined) or the kept share of characters

    @property
    def name(self) -> str:
        return self.kind if self.amount is None else f"{self.kind}:{self.amount:g}"

    @property
    def slug(self) -> str:
        """A folder name: no ':' or '.' (S3- and Windows-safe)."""
        return self.name.replace(":", "-").replace(".", "p")


def methods_for(color_taus: list[float], preselect_keeps: list[float], combined: bool,
                include_run: bool, pool: Pool) -> list[Method]:
    """The methods a run's pool supports besides random (those whose scores the run lacks are
    skipped, not faked)."""
    methods = [Method("run")] if include_run else []
    has_color, has_pre = "color_score" in pool.scores, "preselect_score" in pool.scores
    if has_color:
        methods += [Method("color", float(tau)) for tau in color_taus]
    if has_pre:
        methods += [Method("preselect", float(keep)) for keep in preselect_keeps]
    if has_color and has_pre and combined:
        methods += [Method("combined", float(tau)) for tau in color_taus]
    return methods


def random_sample(tokens: np.ndarray, wanted_tokens: int, seed: int) -> np.ndarray:
    """A seeded shuffle of the pool, cut once it holds `wanted_tokens` (or all of it)."""
    order = np.random.default_rng(seed).permutation(len(tokens))
    enough = int(np.searchsorted(np.cumsum(tokens[order]), wanted_tokens, side="left")) + 1
    return order[: min(enough, len(tokens))]


def choose(pool: Pool, method: Method) -> np.ndarray:
    """Row indices of `pool.table` a non-random method trains on, in a deterministic order."""
    table = pool.table
    if method.kind == "run":
        return np.flatnonzero(table.column("run_kept").to_numpy(zero_copy_only=False))
    if method.kind == "color":
        ranked = _ranked(table, table.column("color_score"))
        return ranked[: math.floor(table.num_rows / float(method.amount or 1))]
    if method.kind == "preselect":
        ranked = _ranked(table, table.column("preselect_score"))
        chars = table.column("n_chars").to_numpy()[ranked]
        budget = float(method.amount or 0) * float(chars.sum())
        return ranked[: int(np.searchsorted(np.cumsum(chars), budget, side="right"))]
    if method.kind == "combined":
        mean_rank = (rank_percentile(table.column("color_score"))
                     + rank_percentile(table.column("preselect_score"))) / 2
        ranked = _ranked(table, pa.array(mean_rank))
        return ranked[: math.floor(table.num_rows / float(method.amount or 1))]
    raise ValueError(f"unknown selection method {method.kind!r}")


def rank_percentile(scores: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each score's rank in [0, 1] (ties share their mean rank; missing scores rank 0)."""
    values = pc.fill_null(scores.cast(pa.float64()), float("-inf")).to_numpy(
        zero_copy_only=False)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse = np.unique(values, return_inverse=True)
    mean = np.bincount(inverse, ranks) / np.bincount(inverse)
    return mean[inverse] / max(len(values) - 1, 1)


def _ranked(table: pa.Table, score: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rows by descending score (nulls last), ties by (id, part, row) ascending."""
    keyed = pa.table({"key": pc.fill_null(score.cast(pa.float64()), float("-inf")),
                      "id": table.column("id"), "part": table.column("part"),
                      "row": table.column("row"),
                      "index": pa.array(np.arange(table.num_rows, dtype=np.int64))})
    ordered = keyed.sort_by([("key", "descending"), ("id", "ascending"), ("part", "ascending"),
                             ("row", "ascending")])
    return ordered.column("index").to_numpy()
