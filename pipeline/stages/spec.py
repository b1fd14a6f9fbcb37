"""What the job knows about a stage: one declaration per stage, and the job loops over them.

A stage is a `Table -> Table` callable that adds columns and never drops rows, built once per
worker (a model is loaded once). Its declaration says everything else the job needs: the name
users pass to `--stages` (also its config section under `stages:`), the drop reason it records
and that reason's priority, the columns it adds, whether its batches are worth checkpointing,
its GPU share, a preflight check, what it prepares before scoring (models, a classifier), and
how it drops rows: a mask over its own columns (`drops`, the dedupe stages), named rules with
thresholds from the config over its measurements (`rules`, the quality rules and language ID:
`select` re-decides them), a global score cut (`cut`) or a shuffle over every part (`shuffle`,
the dedupe clusterings). Nothing elsewhere names a stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.executors.base import Executor, Progress
from siftline.io.storage import Storage
from siftline.layout import Layout
from siftline.progress import Reporter
from siftline.selection.cut import CutRule

Stage = Callable[[pa.Table], pa.Table]
# Per row, the name of the rule that drops it (null where every rule passes); None when the
# table lacks the stage's columns.
Rules = Callable[[pa.Table, PipelineConfig], pa.Array | pa.ChunkedArray | None]


def no_gpus(config: PipelineConfig) -> float:
    return 0.0


def never(config: PipelineConfig) -> bool:
    return False


def nothing(config: PipelineConfig) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class ScoreCut:
    """A global cut by one score column: candidates are the rows every higher-priority rule
    keeps; `rule` reads the rule in force off the config; `plot` says whether to draw the
    score histograms with the cut (`plots/<column>.png`)."""

    column: str
    rule: Callable[[PipelineConfig], CutRule]
    tokens_column: str | None = None  # sizes for a `tokens` budget
    plot: Callable[[PipelineConfig], bool] = never
    label: str = ""  # what the score is, for the plot's axis


@dataclass(frozen=True)
class GlobalStep:
    """A shuffle over every scored part (map per part, reduce per bucket, through files) whose
    result `attach` joins onto a part before selection."""

    run: Callable[[Executor, Layout, Storage, int, int, Progress], None]
    attach: Callable[[pa.Table, Layout, Storage, int, int], pa.Table]


@dataclass(frozen=True)
class StageSpec:
    name: str  # `--stages` name and config section `stages.<name>`
    reason: str  # the drop reason it records
    priority: int  # lower first: the recorded reason, and the rows a cut chooses among
    build: Callable[[PipelineConfig], Stage]  # called once per worker
    columns: tuple[str, ...]  # the columns the stage adds (checked where stages are applied)
    scratch: Callable[[PipelineConfig], tuple[str, ...]] = nothing  # not written to scored/
    costly: bool = False  # a model per batch: a split's scored batches are checkpointed
    gpus: Callable[[PipelineConfig], float] = no_gpus  # GPU share per scoring worker
    preflight: Callable[[PipelineConfig], None] | None = None  # before any work; ConfigError
    prepare: Callable[[PipelineConfig, Storage, Reporter, bool], dict[str, Any]] | None = None
    drops: Callable[[pa.Table], pa.Array | pa.ChunkedArray | None] | None = None  # bool mask
    rules: Rules | None = None  # failing rule names, written as the column `<name>_rule`
    cut: ScoreCut | None = None
    shuffle: GlobalStep | None = None
    builtin: bool = True  # False: a user's stage (`stages.custom`)


def rule_column(spec: StageSpec) -> str:
    """The column that names the rule a row failed, in `scored/` (stages with `rules`)."""
    return f"{spec.name}_rule"


def by_priority(specs: list[StageSpec]) -> list[StageSpec]:
    """The order drop reasons apply in, and cuts are decided in: each cut chooses among the rows
    every earlier rule keeps (stable: equal priorities keep their order)."""
    return sorted(specs, key=lambda spec: spec.priority)
