"""CoLoR-Filter's two job-level steps, around the scoring phase.

Before scoring, `prepare_models` makes sure both auxiliary models exist: the given folders, or
the prior trained on a seeded corpus sample and the conditional model fine-tuned from it on the
target text (a fresh optimizer, about one epoch), saved under OUT/models and reused while their
config is unchanged. After dedupe, `decide_cut` gathers the candidates' scores from every part,
computes the global cut once (kept in _work, so a resumed run reuses it) and draws the
histograms; finalize then applies the cut part by part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import ConfigError, PipelineConfig, TrainJobConfig
from siftline.executors import Executor
from siftline.io.storage import Storage, is_remote
from siftline.io.writers import read_json, write_json
from siftline.layout import Layout
from siftline.selection.color import ALL, candidates, compute_cut
from siftline.selection.rules import apply_selection
from siftline.stages.color_filter import model_dirs


def check_models_config(config: PipelineConfig) -> None:
    """Preflight: given folders exist; trained ones go to a local folder."""
    from siftline.lm.checkpoint import is_model_folder

    cfg = config.stages.color_filter
    if cfg.prior is not None and cfg.conditional is not None:
        for key in ("prior", "conditional"):
            if not is_model_folder(getattr(cfg, key)):
                raise ConfigError(f"stages.color_filter.{key}: {getattr(cfg, key)} is not a "
                                  "model folder (no siftline_lm.json or config.json)")
        return
    prior, _ = model_dirs(config)
    if is_remote(prior):
        raise ConfigError("stages.color_filter.models_dir: models are trained into a local "
                          "folder; set models_dir (or give prior and conditional folders)")


class JobTrainProgress:
    """Training hooks -> the job reporter's bars."""

    def __init__(self, name: str, reporter: Any) -> None:
        self.name, self.reporter = name, reporter

    def phase(self, name: str, detail: str) -> None:
        self.reporter.message(f"{self.name}: {detail}")

    def start(self, total_steps: int, first_step: int, info: dict[str, Any]) -> None:
        self.reporter.phase(self.name, total_steps)
        self.reporter.advance(first_step, total_steps)

    def step(self, info: Any) -> None:
        self.reporter.advance(info.step, info.total_steps)

    def message(self, text: str) -> None:
        self.reporter.message(f"{self.name}: {text}")


def train_or_reuse(fn: Callable[[bool], Any], overwrite: bool) -> Any:
    """Reuse a model trained with the same config; with --overwrite, replace one that differs."""
    try:
        return fn(False)
    except ConfigError as exc:
        if overwrite and "different config" in str(exc):
            return fn(True)
        raise


def prepare_models(config: PipelineConfig, storage: Storage, reporter: Any,
                   overwrite: bool) -> dict[str, Any]:
    """Both model folders, trained here when not given; returns what the manifest records."""
    cfg = config.stages.color_filter
    prior_dir, cond_dir = model_dirs(config)
    if cfg.prior is not None:
        return {"prior": prior_dir, "conditional": cond_dir, "trained": False}
    from siftline.color.target import load_target_texts, target_fingerprint
    from siftline.lm.train import train_lm, train_lm_on_texts

    prior_job = TrainJobConfig(input=config.input, storage=config.storage,
                               sample=cfg.train.sample, model=cfg.train.model,
                               train=cfg.train.prior, output={"path": prior_dir})
    prior = train_or_reuse(lambda ow: train_lm(prior_job, overwrite=ow,
                                       progress=JobTrainProgress("train prior", reporter)),
                   overwrite)
    texts = load_target_texts(cfg.target, config.input, storage)
    cond = train_or_reuse(lambda ow: train_lm_on_texts(
        texts, None, cfg.train.conditional, cond_dir, init=prior_dir, overwrite=ow,
        progress=JobTrainProgress("train conditional", reporter)), overwrite)
    return {
        "prior": prior_dir, "conditional": cond_dir, "trained": True,
        "target_texts": len(texts), "target_sha256": target_fingerprint(texts),
        "prior_val_loss": prior.val_loss_after, "conditional_val_loss": cond.val_loss_after,
    }


def part_candidates(config: PipelineConfig, table: pa.Table, part: int,
                    preselect_cut: dict[str, Any] | None = None) -> pa.Table:
    """Candidates of one part: the rows every earlier rule keeps (PreSelect's cut included)."""
    earlier = [name for name in config.stages.enabled() if name != "color_filter"]
    return candidates(apply_selection(table, earlier, part=part, preselect_cut=preselect_cut),
                      part)


def decide_cut(executor: Executor, task: Callable[[int], pa.Table], parts: int,
               config: PipelineConfig, layout: Layout, storage: Storage,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The global cut, computed once per run (resume reuses `_work/color_cut.json`)."""
    if storage.exists(layout.color_cut):
        return read_json(storage, layout.color_cut)
    tables = executor.map(task, list(range(parts)), progress=progress)
    cands = pa.concat_tables(tables) if tables else candidates(pa.table({}), 0)
    cut = compute_cut(cands, config.stages.color_filter)
    if config.stages.color_filter.plot:
        write_plot(cands, cut, layout, storage)
    write_json(storage, layout.color_cut, cut)
    return cut


def write_plot(cands: pa.Table, cut: dict[str, Any], layout: Layout, storage: Storage) -> None:
    from siftline.color.plot import render_histograms

    scores = cands.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    domains = cands.column("domain").to_pylist()
    by_domain = {ALL: scores[~np.isnan(scores)]}
    for name in sorted(set(domains)):
        mask = pc.equal(cands.column("domain"), name).to_numpy(zero_copy_only=False)
        values = scores[mask]
        by_domain[name] = values[~np.isnan(values)]
    thresholds = _thresholds(cut, by_domain)
    title = f"color_score, rule {cut['rule']} = {cut['amount']:g}"
    storage.write_bytes(layout.color_plot, render_histograms(by_domain, thresholds, title,
                                                                 all_key=ALL))


def _thresholds(cut: dict[str, Any], panels: dict[str, np.ndarray]) -> dict[str, float | None]:
    groups = cut["groups"]
    if not cut["per_domain"]:
        last = groups[ALL]["last"]
        return {name: (None if last is None else last[0]) for name in panels}
    out: dict[str, float | None] = {ALL: None}
    for name in panels:
        if name != ALL:
            last = groups.get(name, {}).get("last")
            out[name] = None if last is None else last[0]
    return out

