"""Phase 1, per split: read -> quarantine -> stages -> staged Arrow file + rejects + record.

A split's outputs are a pure function of its input bytes and the config, and its completion
record is written last, so a task killed at any point is simply redone on resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.config import PipelineConfig
from pipeline.documents import make_table
from pipeline.io.readers import Split, read_split
from pipeline.io.storage import Storage
from pipeline.io.writers import read_json, write_ipc, write_json, write_jsonl
from pipeline.layout import Layout
from pipeline.stages import REGISTRY, Stage, apply_stages, build_stages, empty_scored_table

CPU_STAGES = ("exact_dedupe", "near_dedupe")  # cheap to build; the model stages load in `build`


@dataclass
class SplitScorer:
    """Built once per worker: holds the stage chain (and, later, its models)."""

    config: PipelineConfig
    layout: Layout
    storage: Storage
    stages: list[Stage]

    @classmethod
    def build(cls, config: PipelineConfig, layout: Layout) -> SplitScorer:
        return cls(config, layout, Storage(config.storage.s3), build_stages(config))

    def score(self, split: Split) -> dict[str, Any]:
        done = self.layout.map_done(split.index)
        if self.storage.exists(done):
            return read_json(self.storage, done)
        max_bytes = int(self.config.input.max_doc_bytes)
        tables, rejects = [], []
        for batch in read_split(split, self.config.input, self.storage):
            tables.append(apply_stages(batch.table, self.stages, max_bytes))
            rejects.extend(batch.rejects)
        empty = empty_scored_table(self.stages, max_bytes)
        table = pa.concat_tables([empty, *tables]) if tables else empty
        write_ipc(self.storage, self.layout.stage(split.index), [table], table.schema)
        rejects_rel = None
        if rejects:
            rejects_rel = self.layout.rejects_rel(split.index)
            rows = [{"split": split.index, **r.to_dict()} for r in rejects]
            write_jsonl(self.storage, self.layout.path(rejects_rel), rows)
        record = {
            "split": split.index,
            "uri": split.uri,
            "rows": table.num_rows,
            "quarantined": len(rejects),
            "rejects": rejects_rel,
        }
        write_json(self.storage, done, record)
        return record


def score_split(scorer: SplitScorer, split: Split) -> dict[str, Any]:
    return scorer.score(split)


def warm_worker(config: PipelineConfig) -> None:
    """Import every phase's code and load the CPU stages' compiled kernels (numba's cache) on a
    two-row table, so that a fresh worker process pays for them before the first timed phase."""
    import pipeline.job.runner  # noqa: F401 - the later phases' task functions live there

    stages = [REGISTRY[name](config) for name in config.stages.enabled() if name in CPU_STAGES]
    table = make_table(["a", "b"], ["warm up the kernels", "wa\u0301rm \u01d4p  twice"],
                       ["d", "d"], ["s", "s"])
    apply_stages(table, stages, int(config.input.max_doc_bytes))
