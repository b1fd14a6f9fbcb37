"""Selection methods compared by `eval-selection`, each a deterministic choice of pool rows.

- `random`: a seeded shuffle of the whole pool, cut once it holds the largest training budget
  (no document repeats where the pool allows): the baseline every method is measured against.
- `run`: the run's own selection (its kept rows).
- `color:TAU`: the top 1/TAU of the pool by `color_score` (CoLoR-Filter's rule).
- `selected`: a dataset given as such (`evaluation.selected`), against `evaluation.baseline`.
Ties in score are broken by (id, part, row), as the pipeline's cut does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.evaluation.pool import Pool

RANDOM = "random"


@dataclass(frozen=True)
class Method:
    kind: str  # "random" | "run" | "color" | "selected"
    amount: float | None = None  # tau for color

    @property
    def name(self) -> str:
        return self.kind if self.amount is None else f"{self.kind}:{self.amount:g}"

    @property
    def slug(self) -> str:
        """A folder name: no ':' or '.' (S3- and Windows-safe)."""
        return self.name.replace(":", "-tau").replace(".", "p")


def methods_for(color_taus: list[float], include_run: bool, pool: Pool) -> list[Method]:
    """The methods a run's pool supports besides random (those whose scores the run lacks are
    skipped, not faked)."""
    methods = [Method("run")] if include_run else []
    if "color_score" in pool.scores:
        methods += [Method("color", float(tau)) for tau in color_taus]
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
        ranked = _ranked(table, "color_score")
        return ranked[: math.floor(table.num_rows / float(method.amount or 1))]
    raise ValueError(f"unknown selection method {method.kind!r}")


def _ranked(table: pa.Table, score: str) -> np.ndarray:
    """Rows by descending score (nulls last), ties by (id, part, row) ascending."""
    keyed = pa.table({"key": pc.fill_null(table.column(score).cast(pa.float64()),
                                          float("-inf")),
                      "id": table.column("id"), "part": table.column("part"),
                      "row": table.column("row"),
                      "index": pa.array(np.arange(table.num_rows, dtype=np.int64))})
    ordered = keyed.sort_by([("key", "descending"), ("id", "ascending"), ("part", "ascending"),
                             ("row", "ascending")])
    return ordered.column("index").to_numpy()
