"""`run(config)`: the whole job as a readable sequence of timed, resumable phases.

  preflight -> plan (or resume) -> [train CoLoR-Filter models] -> [build PreSelect's
  classifier] -> score splits -> exact-dedupe shuffle -> near-dedupe shuffle -> [PreSelect cut]
  -> [CoLoR-Filter cut] -> finalize parts -> [domain weights: weights.json]
  -> stats.json + manifest.json -> remove _work

Each phase skips work whose completion record exists, so a killed run restarted with the same
command finishes with the same bytes as one that was never interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa

from siftline.config import ConfigError, PipelineConfig
from siftline.executors import Executor, make_executor
from siftline.io.storage import PendingFile, Storage
from siftline.io.writers import read_ipc, read_json, read_record, write_json
from siftline.job.color import decide_cut, part_candidates, prepare_models
from siftline.job.commits import COMMITS
from siftline.job.exact_dedupe import attach_exact_rep, run_exact_dedupe
from siftline.job.finalize import finalize_table, save_record
from siftline.job.near_dedupe import attach_dup_cluster, run_near_dedupe
from siftline.job.plan import (
    clear_output,
    load_splits,
    make_plan,
    plan_or_resume,
    preflight,
    remove_temp_files,
)
from siftline.job.preselect import decide_cut as decide_preselect_cut
from siftline.job.preselect import part_candidates as preselect_candidates
from siftline.job.preselect import prepare_classifier
from siftline.job.report import build_manifest, build_stats
from siftline.job.score import SplitScorer, score_split, warm_worker
from siftline.layout import Layout
from siftline.mixture.report import check_mixture, run_mixture


class Reporter:
    """Progress hooks; the CLI draws bars, the library stays silent."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, done: int, total: int) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass
class RunResult:
    output: str
    status: str  # "complete" | "already_complete"
    stats: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)


def run(config: PipelineConfig, *, overwrite: bool = False,
        reporter: Reporter | None = None) -> RunResult:
    """Run the configured job end to end (or resume it); see the module docstring."""
    reporter = reporter or Reporter()
    storage = Storage(config.storage.s3)
    layout = Layout.for_output(config.output.path, config.output.work_dir)
    paths = preflight(config, storage)
    check_mixture(config, storage)
    fresh_plan = make_plan(config, paths, storage)  # inputs are checked before anything is cleared
    remove_temp_files(layout)
    if overwrite:
        clear_output(layout, storage)
    elif storage.exists(layout.manifest):
        manifest = read_json(storage, layout.manifest)
        if manifest.get("status") == "complete":
            if manifest.get("config_sha256") != config.sha256():
                raise ConfigError(f"{layout.root} holds a finished run of a different config;"
                                  " rerun with --overwrite to replace it")
            storage.delete(layout.work, recursive=True)  # a kill may have left it behind
            reporter.message(f"{layout.root} is complete; nothing to do (use --overwrite)")
            return RunResult(layout.root, "already_complete",
                             read_json(storage, layout.stats), manifest)
    plan = plan_or_resume(fresh_plan, layout, storage)
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    color = "color_filter" in config.stages.enabled()
    preselect = "preselect" in config.stages.enabled()
    with make_executor(config.executor) as executor:
        job = _Job(config, layout, storage, plan, executor, reporter, timings, peaks)
        job.warm_up()
        models = job.prepare_models(overwrite) if color else None
        classifier = job.prepare_classifier(overwrite) if preselect else None
        map_records = job.score()
        write_json(storage, layout.manifest,
                   build_manifest(config, plan, map_records, [], "running"))
        if "exact_dedupe" in config.stages.enabled():
            job.exact_dedupe()
        if "near_dedupe" in config.stages.enabled():
            job.near_dedupe()
        pcut = job.preselect_cut() if preselect else None
        cut = job.color_cut(pcut) if color else None
        final_records = job.finalize(cut, pcut)
        mixture = job.mixture(final_records) if config.mixture.enabled else None
    stats = build_stats(map_records, final_records, timings, peaks)
    if color:
        stats["color_filter"] = {"models": models, "cut": cut}
    if preselect:
        stats["preselect"] = {"classifier": classifier, "cut": pcut}
    if mixture is not None:
        stats["mixture"] = mixture
    manifest = build_manifest(config, plan, map_records, final_records, "complete")
    write_json(storage, layout.stats, stats)
    write_json(storage, layout.manifest, manifest)
    storage.delete(layout.work, recursive=True)
    return RunResult(layout.root, "complete", stats, manifest)


@dataclass
class _Job:
    config: PipelineConfig
    layout: Layout
    storage: Storage
    plan: dict[str, Any]
    executor: Executor
    reporter: Reporter
    timings: dict[str, float]
    peaks: dict[str, float]

    @contextmanager
    def _timed(self, name: str, total: int) -> Iterator[Callable[[int, int], None]]:
        """Time a phase and keep its workers' peak RSS (the max over its map calls)."""
        self.reporter.phase(name, total)
        self.executor.take_peak_rss_mb()
        start = time.perf_counter()
        yield self.reporter.advance
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        peak = self.executor.take_peak_rss_mb()
        if peak is not None:
            self.peaks[name] = max(self.peaks.get(name, 0.0), peak)

    def warm_up(self) -> None:
        """Workers import the code and load the kernels before the first phase: reported as
        its own `warm_up` phase (Ray only), not hidden and not charged to read+score."""
        start = time.perf_counter()
        if self.executor.warm_up(partial(warm_worker, self.config)):
            self.timings["warm_up"] = time.perf_counter() - start

    def prepare_models(self, overwrite: bool) -> dict[str, Any]:
        start = time.perf_counter()
        models = prepare_models(self.config, self.storage, self.reporter, overwrite)
        self.timings["train_models"] = time.perf_counter() - start
        return models

    def prepare_classifier(self, overwrite: bool) -> dict[str, Any]:
        start = time.perf_counter()
        info = prepare_classifier(self.config, self.storage, self.reporter, overwrite)
        self.timings["preselect_classifier"] = time.perf_counter() - start
        return info

    def preselect_cut(self) -> dict[str, Any]:
        parts = len(self.plan["splits"])
        task = partial(_preselect_candidates, self.config, self.layout, self.storage,
                       self.plan["buckets"])
        with self._timed("preselect_cut", parts) as progress:
            return decide_preselect_cut(self.executor, task, parts, self.config, self.layout,
                                        self.storage, progress)

    def score(self) -> list[dict[str, Any]]:
        splits = load_splits(self.plan)
        gpus = (self.config.stages.color_filter.gpus_per_worker
                if "color_filter" in self.config.stages.enabled() else 0)
        with self._timed("read+score", len(splits)) as progress:
            setup = partial(SplitScorer.build, self.config, self.layout)
            return self.executor.map(score_split, splits, setup=setup, progress=progress,
                                     gpus=gpus)

    def color_cut(self, preselect_cut: dict[str, Any] | None = None) -> dict[str, Any]:
        parts = len(self.plan["splits"])
        task = partial(_color_candidates, self.config, self.layout, self.storage,
                       self.plan["buckets"], preselect_cut)
        with self._timed("color_cut", parts) as progress:
            return decide_cut(self.executor, task, parts, self.config, self.layout,
                              self.storage, progress)

    def exact_dedupe(self) -> None:
        parts, buckets = len(self.plan["splits"]), self.plan["buckets"]
        with self._timed("exact_dedupe", parts + buckets) as progress:
            run_exact_dedupe(self.executor, self.layout, self.storage, parts, buckets,
                             _offset_progress(progress, parts, buckets))

    def near_dedupe(self) -> None:
        parts, buckets = len(self.plan["splits"]), self.plan["buckets"]
        with self._timed("near_dedupe", parts + buckets) as progress:
            run_near_dedupe(self.executor, self.layout, self.storage, parts, buckets,
                            _offset_progress(progress, parts, buckets))

    def finalize(self, cut: dict[str, Any] | None,
                 preselect_cut: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        parts = list(range(len(self.plan["splits"])))
        background = self.executor.in_driver  # commits in this process: job/commits.py
        task = partial(_finalize_part, self.config, self.layout, self.storage,
                       self.plan["buckets"], cut, preselect_cut, background)
        with self._timed("select+write", len(parts)) as progress:
            try:
                records = self.executor.map(task, parts, progress=progress)
            except BaseException:
                COMMITS.drain(raise_errors=False)  # the parts done so far stay done
                raise
            COMMITS.drain()
            return records

    def mixture(self, final_records: list[dict[str, Any]]) -> dict[str, Any]:
        shards = sum(len(r["data"]) for r in final_records)
        with self._timed("weights", shards) as progress:
            return run_mixture(self.config, self.layout, self.storage, self.executor,
                               final_records, progress)


def _offset_progress(progress: Callable[[int, int], None], parts: int, buckets: int):
    """Report the two map passes of the shuffle as one bar."""
    state = {"base": 0}

    def advance(done: int, total: int) -> None:
        progress(state["base"] + done, parts + buckets)
        if done == total:
            state["base"] += total

    return advance


def _attached(config: PipelineConfig, layout: Layout, storage: Storage, buckets: int,
              part: int) -> pa.Table:
    """A staged part with the global steps' columns joined on."""
    table = read_ipc(storage, layout.stage(part))
    if "exact_dedupe" in config.stages.enabled():
        table = attach_exact_rep(table, layout, storage, part, buckets)
    if "near_dedupe" in config.stages.enabled():
        table = attach_dup_cluster(table, layout, storage, part, buckets)
    return table


def _color_candidates(config: PipelineConfig, layout: Layout, storage: Storage, buckets: int,
                      preselect_cut: dict[str, Any] | None, part: int) -> pa.Table:
    return part_candidates(config, _attached(config, layout, storage, buckets, part), part,
                           preselect_cut)


def _preselect_candidates(config: PipelineConfig, layout: Layout, storage: Storage,
                          buckets: int, part: int) -> pa.Table:
    return preselect_candidates(config, _attached(config, layout, storage, buckets, part), part)


def _finalize_part(config: PipelineConfig, layout: Layout, storage: Storage, buckets: int,
                   cut: dict[str, Any] | None, preselect_cut: dict[str, Any] | None,
                   background: bool, part: int) -> dict[str, Any]:
    record = read_record(storage, layout.final_done(part))
    if record is not None:
        return record
    table = _attached(config, layout, storage, buckets, part)
    pending: list[PendingFile] = []
    record = finalize_table(table, part, config, layout, storage, color_cut=cut,
                            preselect_cut=preselect_cut, pending=pending)
    commit = partial(_commit_part, pending, record, layout, storage)
    if background:
        COMMITS.submit(commit)
    else:
        commit()
    return record


def _commit_part(pending: list[PendingFile], record: dict[str, Any], layout: Layout,
                 storage: Storage) -> None:
    """The part's files durable under their names, then its record (job/commits.py)."""
    for file in pending:
        file.commit()
    save_record(record, layout, storage)
    # nothing reads the staged part again (a resume re-scores its split if the record is
    # lost): its page cache, or disk, is freed now for the parts still to come
    storage.delete(layout.stage(record["part"]))
