"""Every stage's global cut, decided once per run in priority order (a resume reuses them).

A cut's candidates are the rows every higher-priority rule keeps, its earlier cuts included:
PreSelect's cut ranks what dedupe leaves, CoLoR-Filter's what PreSelect keeps. Each part's
candidates are gathered on the executor, the cut is computed once (`siftline.selection.cut`),
drawn if its stage asks, and kept in `_work/cuts/`. `run` reads parts from the staged files,
`siftline select` from `OUT/scored/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial

import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.executors.base import Executor, Progress
from siftline.io.storage import Storage
from siftline.io.writers import read_json, write_json
from siftline.layout import Layout
from siftline.selection.cut import CANDIDATE_SCHEMA, Cut, candidates, compute_cut
from siftline.selection.plot import cut_histograms
from siftline.selection.rules import apply_selection
from siftline.stages.spec import StageSpec, by_priority

ReadPart = Callable[[int], pa.Table]  # a part's rows with every column selection needs
Timed = Callable[[str, int], AbstractContextManager[Progress]]


def decide_cuts(specs: list[StageSpec], config: PipelineConfig, executor: Executor,
                layout: Layout, storage: Storage, parts: int, read_part: ReadPart,
                timed: Timed) -> dict[str, Cut]:
    """Each cut stage's cut, by stage name."""
    cuts: dict[str, Cut] = {}
    ordered = by_priority(specs)
    for index, spec in enumerate(ordered):
        if spec.cut is None:
            continue
        with timed(f"cut {spec.name}", parts) as progress:
            cuts[spec.name] = decide_cut(spec, ordered[:index], dict(cuts), config, executor,
                                         layout, storage, parts, read_part, progress)
    return cuts


def decide_cut(spec: StageSpec, earlier: list[StageSpec], cuts: dict[str, Cut],
               config: PipelineConfig, executor: Executor, layout: Layout, storage: Storage,
               parts: int, read_part: ReadPart, progress: Progress | None = None) -> Cut:
    path = layout.cut(spec.name)
    if storage.exists(path):
        return Cut.from_json(read_json(storage, path))
    task = partial(part_candidates, spec, earlier, cuts, config, read_part)
    tables = executor.map(task, list(range(parts)), progress=progress)
    cands = pa.concat_tables(tables) if tables else CANDIDATE_SCHEMA.empty_table()
    cut = compute_cut(cands, spec.cut.rule(config))
    if spec.cut.plot(config):
        label = f"{spec.cut.column} = {spec.cut.label}" if spec.cut.label else spec.cut.column
        storage.write_bytes(layout.score_plot(spec.cut.column), cut_histograms(cands, cut, label))
    write_json(storage, path, cut.to_json())
    return cut


def part_candidates(spec: StageSpec, earlier: list[StageSpec], cuts: dict[str, Cut],
                    config: PipelineConfig, read_part: ReadPart, part: int) -> pa.Table:
    """One part's candidates for `spec`'s cut: the rows every earlier rule keeps."""
    table = apply_selection(read_part(part), earlier, part=part, cuts=cuts, config=config)
    return candidates(table, part, spec.cut.column, spec.cut.tokens_column)


def stage_stats(specs: list[StageSpec], prepared: dict[str, dict],
                cuts: dict[str, Cut]) -> Iterator[tuple[str, dict]]:
    """stats.json's entry per stage that prepared something or cut: what it built, its cut."""
    for spec in specs:
        entry = dict(prepared.get(spec.name, {}))
        if spec.name in cuts:
            entry["cut"] = cuts[spec.name].to_json()
        if entry:
            yield spec.name, entry
