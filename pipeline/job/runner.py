"""`run(config)`: the whole job as a readable sequence of timed, resumable phases.

  preflight -> plan (or resume) -> prepare each stage (train models, build classifiers)
  -> score splits -> each stage's shuffle (exact, near dedupe) -> each stage's cut, in
  priority order -> finalize parts -> [domain weights: weights.json]
  -> stats.json + manifest.json -> remove _work

The job loops over the enabled stages' declarations (`siftline.stages.spec`) and names none.
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

from siftline.config import PipelineConfig
from siftline.documents import make_table
from siftline.errors import ConfigError
from siftline.executors import (
    Executor,
    ExecutorChoice,
    choose_executor,
    make_executor,
    planned_bytes,
)
from siftline.io.split import input_bytes
from siftline.io.storage import PendingFile, Storage
from siftline.io.writers import read_ipc, read_json, read_record, write_json
from siftline.job.commits import COMMITS
from siftline.job.cuts import decide_cuts, stage_stats
from siftline.job.finalize import finalize_table, save_record
from siftline.job.plan import (
    clear_output,
    load_splits,
    make_plan,
    plan_or_resume,
    preflight,
    remove_temp_files,
)
from siftline.job.report import build_manifest, build_stats, write_complete
from siftline.job.score import SplitScorer, score_split
from siftline.layout import Layout
from siftline.mixture.report import check_mixture, run_mixture
from siftline.progress import Reporter, SilentReporter
from siftline.selection.cut import Cut
from siftline.stages.chain import BuiltStage, apply_stages
from siftline.stages.registry import enabled_specs
from siftline.stages.spec import StageSpec


@dataclass
class RunResult:
    output: str
    status: str  # "complete" | "already_complete"
    stats: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)


def run(config: PipelineConfig, *, overwrite: bool = False,
        reporter: Reporter | None = None) -> RunResult:
    """Run the configured job end to end (or resume it); see the module docstring."""
    reporter = reporter or SilentReporter()
    storage = Storage(config.storage.s3)
    layout = Layout.for_output(config.output.path, config.output.work_dir)
    specs = enabled_specs(config)
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
    choice = job_executor(config, specs, plan)
    if choice.auto:
        reporter.message(choice.message())
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    with make_executor(config.executor, choice) as executor:
        job = _Job(config, specs, layout, storage, plan, executor, reporter, timings, peaks)
        job.warm_up()
        prepared = job.prepare(overwrite)
        map_records = job.score()
        write_json(storage, layout.manifest,
                   build_manifest(config, plan, map_records, [], "running", choice))
        job.shuffles()
        cuts = job.cuts()
        final_records = job.finalize(cuts)
        mixture = job.mixture(final_records) if config.mixture.enabled else None
    stats = build_stats(map_records, final_records, timings, peaks, choice)
    stats.update(stage_stats(specs, prepared, cuts))
    for name, counts in job.shuffled.items():  # what each global step reports (near dedupe)
        stats[name] = {**stats.get(name, {}), **counts}
    manifest = write_complete(config, plan, map_records, final_records, stats, mixture, layout,
                              storage, choice)
    storage.delete(layout.work, recursive=True)
    return RunResult(layout.root, "complete", stats, manifest)


def job_executor(config: PipelineConfig, specs: list[StageSpec],
                 plan: dict[str, Any]) -> ExecutorChoice:
    """The executor for this plan (`executor.kind: auto` decides here, when the splits and
    their bytes are known; a stage's GPU share keeps the job on Ray)."""
    splits = load_splits(plan)
    gpus = max((spec.gpus(config) for spec in specs), default=0.0)
    return choose_executor(config.executor, len(splits), planned_bytes(splits), gpus)


def warm_worker(config: PipelineConfig) -> None:
    """Load the cheap built-in stages' compiled kernels (the C builds, or numba's cache where
    there are none, and near-dedupe's numba kernels) on a two-row table, so that a fresh worker
    process pays for them, and for importing every phase's code, before the first timed phase."""
    stages = [BuiltStage(spec, spec.build(config)) for spec in enabled_specs(config)
              if spec.builtin and not spec.costly]
    table = make_table(["a", "b"], ["warm up the kernels", "wa\u0301rm \u01d4p  twice"],
                       ["d", "d"], ["s", "s"])
    apply_stages(table, stages, int(config.input.max_doc_bytes))


@dataclass
class _Job:
    config: PipelineConfig
    specs: list[StageSpec]
    layout: Layout
    storage: Storage
    plan: dict[str, Any]
    executor: Executor
    reporter: Reporter
    timings: dict[str, float]
    peaks: dict[str, float]
    shuffled: dict[str, dict[str, Any]] = field(default_factory=dict)  # a step's counts

    @property
    def parts(self) -> int:
        return len(self.plan["splits"])

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
        self.reporter.end()

    def warm_up(self) -> None:
        """Workers import the code and load the kernels before the first phase: reported as
        its own `warm_up` phase (Ray only), not hidden and not charged to read+score."""
        start = time.perf_counter()
        if self.executor.warm_up(partial(warm_worker, self.config)):
            self.timings["warm_up"] = time.perf_counter() - start

    def prepare(self, overwrite: bool) -> dict[str, dict[str, Any]]:
        """What each stage needs before scoring (models, a classifier), by stage name."""
        prepared = {}
        for spec in self.specs:
            if spec.prepare is not None:
                start = time.perf_counter()
                prepared[spec.name] = spec.prepare(self.config, self.storage, self.reporter,
                                                   overwrite)
                self.timings[f"prepare {spec.name}"] = time.perf_counter() - start
        return prepared

    def score(self) -> list[dict[str, Any]]:
        splits = load_splits(self.plan)
        gpus = max((spec.gpus(self.config) for spec in self.specs), default=0.0)
        sizes = input_bytes(splits)

        def finished(record: dict[str, Any]) -> None:  # documents read, input bytes
            self.reporter.count(record["rows"] + record["quarantined"], sizes[record["split"]])

        with self._timed("read+score", len(splits)) as progress:
            setup = partial(SplitScorer.build, self.config, self.layout)
            return self.executor.map(score_split, splits, setup=setup, progress=progress,
                                     gpus=gpus, on_result=finished)

    def shuffles(self) -> None:
        """Each stage's global step over every part (the dedupe clusterings)."""
        buckets = self.plan["buckets"]
        for spec in self.specs:
            if spec.shuffle is not None:
                with self._timed(spec.name, self.parts + buckets) as progress:
                    counts = spec.shuffle.run(self.executor, self.layout, self.storage,
                                              self.parts, buckets,
                                              _offset_progress(progress, self.parts, buckets))
                if counts:  # a step may report counts for stats.json (GlobalStep.run)
                    self.shuffled[spec.name] = counts

    def cuts(self) -> dict[str, Cut]:
        read_part = partial(_attached, self.specs, self.layout, self.storage,
                            self.plan["buckets"])
        return decide_cuts(self.specs, self.config, self.executor, self.layout, self.storage,
                           self.parts, read_part, self._timed)

    def finalize(self, cuts: dict[str, Cut]) -> list[dict[str, Any]]:
        parts = list(range(self.parts))
        background = self.executor.in_driver  # commits in this process: job/commits.py
        task = partial(_finalize_part, self.config, self.specs, self.layout, self.storage,
                       self.plan["buckets"], cuts, background)
        with self._timed("select+write", len(parts)) as progress:
            try:
                records = self.executor.map(task, parts, progress=progress,
                                            on_result=self._count_rows)
            except BaseException:
                COMMITS.drain(raise_errors=False)  # the parts done so far stay done
                raise
            COMMITS.drain()
            return records

    def _count_rows(self, record: dict[str, Any]) -> None:
        self.reporter.count(record["rows"])

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


def _attached(specs: list[StageSpec], layout: Layout, storage: Storage, buckets: int,
              part: int) -> pa.Table:
    """A staged part with the global steps' columns joined on."""
    table = read_ipc(storage, layout.stage(part))
    for spec in specs:
        if spec.shuffle is not None:
            table = spec.shuffle.attach(table, layout, storage, part, buckets)
    return table


def _finalize_part(config: PipelineConfig, specs: list[StageSpec], layout: Layout,
                   storage: Storage, buckets: int, cuts: dict[str, Cut], background: bool,
                   part: int) -> dict[str, Any]:
    record = read_record(storage, layout.final_done(part))
    if record is not None:
        return record
    table = _attached(specs, layout, storage, buckets, part)
    pending: list[PendingFile] = []
    record = finalize_table(table, part, config, specs, layout, storage, cuts, pending=pending)
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
