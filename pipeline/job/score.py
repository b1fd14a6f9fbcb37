"""Phase 1, per split: read -> quarantine -> stages -> staged Arrow file + rejects + record.

A split's outputs are a pure function of its input bytes and the config, and its completion
record is written last, so a task killed at any point is simply redone on resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.errors import StageError
from siftline.executors.allocator import keep_large_buffers
from siftline.io.readers import read_split
from siftline.io.split import Split
from siftline.io.storage import Storage
from siftline.io.writers import ipc_whole, read_record, write_json, write_jsonl, write_table_ipc
from siftline.job.split_checkpoint import SplitCheckpoints, wants_checkpoints
from siftline.layout import Layout
from siftline.stages.chain import BuiltStage, apply_stages, build_stages, empty_scored_table


@dataclass
class SplitScorer:
    """Built once per worker: holds the stage chain (and, later, its models)."""

    config: PipelineConfig
    layout: Layout
    storage: Storage
    stages: list[BuiltStage]

    @classmethod
    def build(cls, config: PipelineConfig, layout: Layout) -> SplitScorer:
        keep_large_buffers()
        return cls(config, layout, Storage(config.storage.s3), build_stages(config))

    def score(self, split: Split) -> dict[str, Any]:
        done = self.layout.map_done(split.index)
        record = read_record(self.storage, done)
        if record is not None and (
            read_record(self.storage, self.layout.final_done(split.index)) is not None
            or ipc_whole(self.storage, self.layout.stage(split.index), rows=record["rows"])
        ):  # (finalize deletes a staged part once the part is final)
            return record
        max_bytes = int(self.config.input.max_doc_bytes)
        checkpoints = SplitCheckpoints(self.storage, self.layout, split.index,
                                       wants_checkpoints(self.stages))
        tables, rejects = [], []
        try:
            for index, batch in enumerate(read_split(split, self.config.input, self.storage)):
                tables.append(checkpoints.scored(
                    index, batch.table,
                    lambda t: apply_stages(t, self.stages, max_bytes, self.config)))
                rejects.extend(batch.rejects)
            empty = empty_scored_table(self.stages, max_bytes, self.config)
        except StageError as exc:
            raise StageError(f"{split.uri}: {exc}") from exc
        table = pa.concat_tables([empty, *tables]) if tables else empty
        # the largest file of the job, and scratch: checked on resume instead of fsynced
        write_table_ipc(self.storage, self.layout.stage(split.index), table, durable=False)
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
        write_json(self.storage, done, record, durable=False)  # see `read_record`
        checkpoints.clear()
        return record


def score_split(scorer: SplitScorer, split: Split) -> dict[str, Any]:
    return scorer.score(split)
