"""Stages: pure `Table -> Table` callables that add columns and never drop rows.

A stage that holds a model is a class built once per worker (`build_stages` runs inside the
worker); a stateless stage is a plain class or function. Names here are the public names used
by `--stages` and the config's `stages:` section. A stage whose per-batch work is costly (a
model) sets `checkpoint_batches = True`, so a split's scored batches survive a lost worker.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.documents import add_local_reasons, make_table
from siftline.stages.color_filter import ColorScore
from siftline.stages.exact_dedupe import ExactHash
from siftline.stages.near_dedupe import MinHashBands
from siftline.stages.preselect_score import PreselectScore

Stage = Callable[[pa.Table], pa.Table]

REGISTRY: dict[str, Callable[[PipelineConfig], Stage]] = {
    "exact_dedupe": lambda config: ExactHash(),
    "near_dedupe": lambda config: MinHashBands(config.stages.near_dedupe),
    "color_filter": ColorScore.build,
    "preselect": PreselectScore.build,
}


def build_stages(config: PipelineConfig) -> list[Stage]:
    return [REGISTRY[name](config) for name in config.stages.enabled()]


def apply_stages(table: pa.Table, stages: list[Stage], max_doc_bytes: int) -> pa.Table:
    """Reading-time reasons first, then every stage in order."""
    table = add_local_reasons(table, max_doc_bytes)
    for stage in stages:
        table = stage(table)
    return table


def empty_scored_table(stages: list[Stage], max_doc_bytes: int) -> pa.Table:
    """The schema a split's scored table has, built by running the stages on zero rows."""
    return apply_stages(make_table([], [], [], []), stages, max_doc_bytes)
