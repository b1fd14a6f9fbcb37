"""PreSelect's two job-level steps, around the scoring phase.

Before scoring, `prepare_classifier` makes sure the fastText classifier exists: the given `.bin`,
or one built under OUT/models/preselect (reference models -> labels -> fastText; see
`siftline.preselect.build`) and reused while its config is unchanged. After dedupe,
`decide_cut` gathers the candidates' scores and characters from every part and computes the
global cut once (kept in _work, so a resumed run reuses it); CoLoR-Filter, when enabled too,
then chooses among the rows PreSelect keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from siftline.config import ConfigError, PipelineConfig
from siftline.executors import Executor
from siftline.io.storage import Storage, is_remote, join
from siftline.io.writers import read_json, write_json
from siftline.layout import Layout
from siftline.selection.preselect import candidates, compute_cut
from siftline.selection.rules import apply_selection
from siftline.stages.preselect_score import classifier_path, models_dir


def cut_path(layout: Layout) -> str:
    return join(layout.work, "preselect_cut.json")


def check_preselect_config(config: PipelineConfig) -> None:
    """Preflight: a given classifier exists; a built one goes to a local folder."""
    cfg = config.stages.preselect
    if cfg.model is not None:
        from pathlib import Path

        if is_remote(cfg.model) or not Path(cfg.model).is_file():
            raise ConfigError(f"stages.preselect.model: {cfg.model} is not a local fastText "
                              "model file")
        return
    if is_remote(models_dir(config)):
        raise ConfigError("stages.preselect.models_dir: the classifier is built into a local "
                          "folder; set models_dir (or give model)")


def prepare_classifier(config: PipelineConfig, storage: Storage, reporter: Any,
                       overwrite: bool) -> dict[str, Any]:
    """The classifier's path, built here when not given; returns what stats.json records."""
    check_preselect_config(config)
    cfg = config.stages.preselect
    if cfg.model is not None:
        from siftline.preselect.classifier import load_classifier

        try:
            load_classifier(cfg.model)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"stages.preselect.model: {exc}") from None
        return {"model": cfg.model, "built": False}
    from siftline.preselect.build import build_classifier

    return build_classifier(config, storage, reporter, overwrite)


def part_candidates(config: PipelineConfig, table: pa.Table, part: int) -> pa.Table:
    """Candidates of one part: the rows the reading-time and dedupe rules keep."""
    earlier = [name for name in config.stages.enabled()
               if name not in ("preselect", "color_filter")]
    return candidates(apply_selection(table, earlier, part=part), part)


def decide_cut(executor: Executor, task: Callable[[int], pa.Table], parts: int,
               config: PipelineConfig, layout: Layout, storage: Storage,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The global cut, computed once per run (resume reuses `_work/preselect_cut.json`)."""
    path = cut_path(layout)
    if storage.exists(path):
        return read_json(storage, path)
    tables = executor.map(task, list(range(parts)), progress=progress)
    cands = pa.concat_tables(tables) if tables else None
    if cands is None:
        from siftline.selection.color import CANDIDATE_SCHEMA

        cands = CANDIDATE_SCHEMA.empty_table()
    cut = compute_cut(cands, config.stages.preselect)
    cut["classifier"] = classifier_path(config)
    write_json(storage, path, cut)
    return cut
