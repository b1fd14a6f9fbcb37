"""What the rule stages share: measure once per batch, judge by named thresholds at selection.

A rule stage (Gopher quality and repetition, FineWeb, C4) adds one float column per measurement,
`<stage>_<measurement>`, null on rows dropped while reading. Its rules are `Threshold`s over
those columns whose limits are config keys; selection evaluates them in order and records the
first that fails, by its key, in `<stage>_rule` (`siftline.selection.rules`). Because the
measurements persist in `scored/`, `siftline select` re-judges with new limits, as Dolma's mixer
filters on its taggers' attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.documents import active_mask
from siftline.sections import Section

Measure = Callable[[list[str]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Threshold:
    """A rule: `key` is the config key holding its limit and the name recorded when it fails.
    `min` fails below the limit, `max` above it, `flag` where the measurement is 1 while the
    key is true. A null limit (or a false flag) switches the rule off; a missing (NaN or null)
    measurement never fails."""

    key: str
    measure: str
    bound: Literal["min", "max", "flag"]


def column_names(stage: str, measures: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{stage}_{name}" for name in measures)


class MeasureStage:
    """A stage callable: measures the text of the rows still in play, nulls elsewhere."""

    def __init__(self, stage: str, measures: Sequence[str], measure: Measure) -> None:
        self.columns = column_names(stage, measures)
        self.measures, self.measure = tuple(measures), measure

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = np.flatnonzero(active_mask(table).to_numpy(zero_copy_only=False))
        texts = table.column("text").take(pa.array(rows, pa.int64())).to_pylist()
        values = self.measure(texts)
        for column, name in zip(self.columns, self.measures, strict=True):
            full = np.full(table.num_rows, np.nan)
            full[rows] = values[name]
            valid = np.zeros(table.num_rows, bool)
            valid[rows] = True
            table = table.append_column(column, pa.array(full, pa.float64(), mask=~valid))
        return table


def failing_rule(table: pa.Table, stage: str, rules: Sequence[Threshold],
                 section: Section, limit: Callable[[str], Any] | None = None) -> pa.Array | None:
    """Per row, the key of the first rule that fails (null where all pass); None when the
    table lacks a measurement an active rule needs (a run without this stage). `limit` reads a
    rule's limit off the section (default: the attribute of its key)."""
    names = pa.nulls(table.num_rows, pa.string())
    failed = np.zeros(table.num_rows, bool)
    for rule in rules:
        bound = limit(rule.key) if limit is not None else getattr(section, rule.key)
        if bound is None or bound is False:
            continue
        column = f"{stage}_{rule.measure}"
        if column not in table.column_names:
            return None
        values = pc.fill_null(table.column(column), np.nan).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            if rule.bound == "min":
                hit = values < bound
            elif rule.bound == "max":
                hit = values > bound
            else:
                hit = values == 1.0
        new = hit & ~failed
        if new.any():
            names = pc.if_else(pa.array(new), rule.key, names)
            failed |= hit
    return names
