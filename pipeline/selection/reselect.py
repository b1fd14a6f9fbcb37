"""`siftline select OUT`: re-decide drop reasons from `OUT/scored/` without re-scoring.

Scores and dedupe clusters come from the scored parts; the text of the kept rows is re-read
from the inputs (recorded with their fingerprints in the manifest), the way Dolma mixes
documents with their attribute files. An input that changed since scoring is an error, never a
silent mismatch. Each part is rewritten atomically and the whole command is idempotent, so an
interrupted re-selection is finished by running it again.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from siftline.config import ConfigError, PipelineConfig
from siftline.executors import make_executor
from siftline.io.readers import Split, read_split
from siftline.io.storage import Storage
from siftline.io.writers import read_json, write_json
from siftline.job.finalize import finalize_table
from siftline.job.report import build_manifest, build_stats
from siftline.layout import Layout


def load_finished_manifest(output: str, storage: Storage) -> dict[str, Any]:
    layout = Layout.for_output(output)
    if not storage.exists(layout.manifest):
        raise ConfigError(f"{output}: no manifest.json; is this a siftline output folder?")
    manifest = read_json(storage, layout.manifest)
    if manifest.get("status") not in ("complete", "selecting"):
        raise ConfigError(f"{output}: the run is not complete; finish it with `siftline run`")
    return manifest


def read_split_text(split: Split, config: PipelineConfig, storage: Storage) -> pa.Table:
    """(id, text) of a split's documents, re-read from its unchanged input."""
    if storage.fingerprint(split.uri) != split.fingerprint:
        raise ConfigError(f"input {split.uri} changed since it was scored; run the job again")
    texts = [batch.table.select(["id", "text"]) for batch in read_split(split, config.input,
                                                                          storage)]
    if not texts:
        return pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    return pa.concat_tables(texts)


def part_with_text(split: Split, config: PipelineConfig, layout: Layout,
                    storage: Storage) -> pa.Table:
    with storage.open(layout.path(layout.scored_rel(split.index))) as handle:
        scored = pq.read_table(handle)
    text = read_split_text(split, config, storage)
    if text.column("id") != scored.column("id"):
        raise ConfigError(f"input {split.uri} no longer matches its scored part; run the job again")
    text_field = pa.field("text", pa.string(), nullable=False)
    return scored.add_column(1, text_field, text.column("text").combine_chunks())


def _scored_candidates(config: PipelineConfig, layout: Layout, storage: Storage,
                       preselect_cut: dict[str, Any] | None, part: int) -> pa.Table:
    from siftline.job.color import part_candidates

    with storage.open(layout.path(layout.scored_rel(part))) as handle:
        return part_candidates(config, pq.read_table(handle), part, preselect_cut)


def _color_cut(executor, config: PipelineConfig, layout: Layout,
               storage: Storage, parts: int,
               preselect_cut: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CoLoR-Filter cut for the new rule, from the persisted scores alone."""
    from siftline.job.color import decide_cut

    storage.delete(layout.color_cut)
    task = partial(_scored_candidates, config, layout, storage, preselect_cut)
    cut = decide_cut(executor, task, parts, config, layout, storage)
    storage.delete(layout.work, recursive=True)
    return cut


def _scored_preselect_candidates(config: PipelineConfig, layout: Layout, storage: Storage,
                                 part: int) -> pa.Table:
    from siftline.job.preselect import part_candidates

    with storage.open(layout.path(layout.scored_rel(part))) as handle:
        return part_candidates(config, pq.read_table(handle), part)


def _preselect_cut(executor, config: PipelineConfig, layout: Layout, storage: Storage,
                   parts: int) -> dict[str, Any]:
    """PreSelect's cut for the new keep share or threshold, from the persisted scores."""
    from siftline.job.preselect import cut_path, decide_cut

    storage.delete(cut_path(layout))
    task = partial(_scored_preselect_candidates, config, layout, storage)
    cut = decide_cut(executor, task, parts, config, layout, storage)
    storage.delete(layout.work, recursive=True)
    return cut


def _reselect_part(config: PipelineConfig, layout: Layout, storage: Storage,
                   cut: dict[str, Any] | None, preselect_cut: dict[str, Any] | None,
                   split: Split) -> dict[str, Any]:
    table = part_with_text(split, config, layout, storage)
    before = {f.rsplit("/", 1)[-1] for f in storage.glob(
        layout.path(f"data/part-{split.index:05d}-*.parquet"))}
    record = finalize_table(table, split.index, config, layout, storage, color_cut=cut,
                            preselect_cut=preselect_cut)
    after = {d["path"].rsplit("/", 1)[-1] for d in record["data"]}
    for stale in sorted(before - after):
        storage.delete(layout.path(f"data/{stale}"))
    return record


def reselect(output: str, config: PipelineConfig, progress=None) -> dict[str, Any]:
    """Re-run selection for every part with `config`'s rules; returns the new stats."""
    storage = Storage(config.storage.s3)
    layout = Layout.for_output(output)
    manifest = load_finished_manifest(output, storage)
    splits = [Split(**s) for s in manifest["splits"]]
    manifest["status"] = "selecting"
    write_json(storage, layout.manifest, manifest)
    plan = {"splits": manifest["splits"], "buckets": manifest["buckets"]}
    map_records = manifest["split_records"]
    color = "color_filter" in config.stages.enabled()
    preselect = "preselect" in config.stages.enabled()
    with make_executor(config.executor) as executor:
        start = time.perf_counter()
        pcut = (_preselect_cut(executor, config, layout, storage, len(splits)) if preselect
                else None)
        cut = _color_cut(executor, config, layout, storage, len(splits), pcut) if color else None
        task = partial(_reselect_part, config, layout, storage, cut, pcut)
        final_records = executor.map(task, splits, progress=progress)
        timings = {"select+write": time.perf_counter() - start}
        peak = executor.take_peak_rss_mb()
        mixture = _mixture(config, layout, storage, executor, final_records, timings)
    peaks = {"select+write": peak} if peak is not None else None
    stats = build_stats(map_records, final_records, timings, peaks)
    if color:
        previous = read_json(storage, layout.stats).get("color_filter", {})
        stats["color_filter"] = {"models": previous.get("models"), "cut": cut}
    if preselect:
        previous = read_json(storage, layout.stats).get("preselect", {})
        stats["preselect"] = {"classifier": previous.get("classifier"), "cut": pcut}
    if mixture is not None:
        stats["mixture"] = mixture
    new_manifest = build_manifest(config, plan, map_records, final_records, "complete")
    write_json(storage, layout.stats, stats)
    write_json(storage, layout.manifest, new_manifest)
    return stats


def _mixture(config: PipelineConfig, layout: Layout, storage: Storage, executor: Any,
             final_records: list[dict[str, Any]], timings: dict[str, float]
             ) -> dict[str, Any] | None:
    """weights.json again for the new kept data (siftline.mixture); mixed shards drawn from
    the old data are removed."""
    storage.delete(layout.path("mix"), recursive=True)
    if not config.mixture.enabled:
        return None
    from siftline.mixture.report import run_mixture

    start = time.perf_counter()
    entry = run_mixture(config, layout, storage, executor, final_records)
    storage.delete(layout.work, recursive=True)
    timings["weights"] = time.perf_counter() - start
    return entry
