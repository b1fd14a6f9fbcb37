"""`siftline select OUT`: re-decide drop reasons from `OUT/scored/` without re-scoring.

Every enabled stage's rule is applied again to the persisted columns, and every cut decided
again from the persisted scores (`job/cuts.py`, reading scored parts instead of staged ones);
the text of the kept rows is re-read from the unchanged inputs (`siftline.outputs`). Each part
is rewritten atomically and the whole command is idempotent, so an interrupted re-selection is
finished by running it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from siftline.config import PipelineConfig, load_config
from siftline.errors import ConfigError
from siftline.executors import Executor, choose_executor, make_executor, planned_bytes
from siftline.executors.base import Progress
from siftline.io.split import Split
from siftline.io.storage import Storage
from siftline.io.writers import read_json, write_json
from siftline.job.cuts import decide_cuts, stage_stats
from siftline.job.finalize import finalize_table
from siftline.job.report import RUN_MEASURED, build_stats, write_complete
from siftline.layout import Layout
from siftline.mixture.report import run_mixture
from siftline.outputs import load_finished_manifest, part_with_text, read_scored, scored_schema
from siftline.progress import Reporter, SilentReporter
from siftline.selection.cut import Cut
from siftline.stages.registry import enabled_specs, spec_of
from siftline.stages.spec import StageSpec


def check_scores_present(specs: list[StageSpec], config: PipelineConfig, layout: Layout,
                         storage: Storage, parts: int) -> None:
    """Re-selection by a stage needs the columns the run persisted for it."""
    if not parts:
        return
    schema = scored_schema(layout, storage, 0)
    empty = schema.empty_table()
    missing = [spec.name for spec in specs
               if (spec.cut is not None and spec.cut.column not in schema.names)
               or (spec.drops is not None and spec.drops(empty) is None)
               or (spec.rules is not None and spec.rules(empty, config) is None)]
    if missing:
        raise ConfigError(f"{layout.root}: the run has no scores for {', '.join(missing)} "
                          "(its scored/ parts lack their columns); run the job with them")


def check_stages_ran(output: str, manifest: dict[str, Any], wanted: list[str],
                     storage: Storage) -> None:
    """`check_scores_present` for the stages a `select` names, before its config is built with
    them on: that config would ask for what only scoring needs (PreSelect's classifier,
    CoLoR-Filter's target) and hide that the run has no scores for them. Unknown names are
    left to the config's own check."""
    config = load_config({**manifest["config"], "storage": {}})
    known = set(config.stages.names())
    specs = [spec_of(config, name) for name in dict.fromkeys(wanted) if name in known]
    check_scores_present(specs, config, Layout.for_output(output), storage,
                         len(manifest["splits"]))


def reselect(output: str, config: PipelineConfig, progress: Progress | None = None,
             reporter: Reporter | None = None) -> dict[str, Any]:
    """Re-run selection for every part with `config`'s rules; returns the new stats. The
    reporter hears the phases (cuts, select+write, weights), as a run's does."""
    reporter = reporter or SilentReporter()
    storage = Storage(config.storage.s3)
    layout = Layout.for_output(output)
    manifest = load_finished_manifest(output, storage)
    specs = enabled_specs(config)
    splits = [Split(**s) for s in manifest["splits"]]
    check_scores_present(specs, config, layout, storage, len(splits))
    previous = read_json(storage, layout.stats)
    manifest["status"] = "selecting"
    write_json(storage, layout.manifest, manifest)
    plan = {"splits": manifest["splits"], "buckets": manifest["buckets"]}
    map_records = manifest["split_records"]
    timings: dict[str, float] = {}
    choice = choose_executor(config.executor, len(splits), planned_bytes(splits))  # no model
    if choice.auto:
        reporter.message(choice.message())
    with make_executor(config.executor, choice) as executor:
        cuts = _cuts(specs, config, executor, layout, storage, len(splits), timings, reporter)
        start = time.perf_counter()
        task = partial(_reselect_part, config, specs, layout, storage, cuts)
        reporter.phase("select+write", len(splits))
        final_records = executor.map(task, splits, progress=_both(progress, reporter.advance),
                                     on_result=lambda record: reporter.count(record["rows"]))
        timings["select+write"] = time.perf_counter() - start
        reporter.end()
        peak = executor.take_peak_rss_mb()
        mixture = _mixture(config, layout, storage, executor, final_records, timings, reporter)
    peaks = {"select+write": peak} if peak is not None else None
    stats = build_stats(map_records, final_records, timings, peaks, choice)
    prepared = {spec.name: {k: v for k, v in previous.get(spec.name, {}).items() if k != "cut"}
                for spec in specs}
    stats.update(stage_stats(specs, prepared, cuts))
    for key in RUN_MEASURED:  # the run's own measurements stay; this selection's go beside them
        if key in stats:
            stats[f"select_{key}"] = stats.pop(key)
        if key in previous:
            stats[key] = previous[key]
    write_complete(config, plan, map_records, final_records, stats, mixture, layout, storage,
                   choice)
    return stats


def _both(first: Progress | None, second: Progress) -> Progress:
    """The caller's progress callback, if any, and the reporter's."""
    if first is None:
        return second

    def advance(done: int, total: int) -> None:
        first(done, total)
        second(done, total)

    return advance


def _cuts(specs: list[StageSpec], config: PipelineConfig, executor: Executor, layout: Layout,
          storage: Storage, parts: int, timings: dict[str, float], reporter: Reporter
          ) -> dict[str, Cut]:
    """Every cut for the new rules, from the persisted scores alone."""

    @contextmanager
    def timed(name: str, total: int) -> Iterator[Progress]:
        reporter.phase(name, total)
        start = time.perf_counter()
        yield reporter.advance
        timings[name] = time.perf_counter() - start
        reporter.end()

    storage.delete(layout.work, recursive=True)  # no cut of an earlier selection is reused
    cuts = decide_cuts(specs, config, executor, layout, storage, parts,
                       partial(read_scored, layout, storage), timed)
    storage.delete(layout.work, recursive=True)
    return cuts


def _reselect_part(config: PipelineConfig, specs: list[StageSpec], layout: Layout,
                   storage: Storage, cuts: dict[str, Cut], split: Split) -> dict[str, Any]:
    table = part_with_text(split, config, layout, storage)
    before = {f.rsplit("/", 1)[-1] for f in storage.glob(layout.data_glob(split.index))}
    record = finalize_table(table, split.index, config, specs, layout, storage, cuts)
    after = {d["path"].rsplit("/", 1)[-1] for d in record["data"]}
    for stale in sorted(before - after):
        storage.delete(layout.path(f"data/{stale}"))
    return record


def _mixture(config: PipelineConfig, layout: Layout, storage: Storage, executor: Executor,
             final_records: list[dict[str, Any]], timings: dict[str, float],
             reporter: Reporter) -> dict[str, Any] | None:
    """weights.json again for the new kept data (siftline.mixture); mixed shards drawn from
    the old data are removed."""
    storage.delete(layout.path("mix"), recursive=True)
    if not config.mixture.enabled:
        return None
    start = time.perf_counter()
    reporter.phase("weights", sum(len(r["data"]) for r in final_records))
    entry = run_mixture(config, layout, storage, executor, final_records, reporter.advance)
    storage.delete(layout.work, recursive=True)
    timings["weights"] = time.perf_counter() - start
    reporter.end()
    return entry
