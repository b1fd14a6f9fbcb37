"""Batch checkpoints within a split, for stage chains that hold a model.

Scoring a split with LMs (CoLoR-Filter) or fastText (PreSelect) costs far more than reading it,
so a worker lost halfway through a split should not score again the batches it had finished.
After each batch the scored table is written atomically to `Layout.partial(split, batch)`; a
re-run of the split still reads every batch (reading is what advances through the input, and
it yields the batch's rejects again), but takes a persisted batch's scored table from its file
instead of applying the stages. `read_split` cuts the same batches from the same bytes and
config, and a persisted batch is only used when its ids are the ones just read, so a mismatch
costs a re-score, never a wrong row. Chains of cheap stages (hashing, MinHash) write nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from siftline.io.storage import Storage
from siftline.io.writers import read_ipc, write_table_ipc
from siftline.layout import Layout
from siftline.stages.chain import BuiltStage


def wants_checkpoints(stages: Sequence[BuiltStage]) -> bool:
    """True when a stage declares its per-batch work costly (`StageSpec.costly`)."""
    return any(stage.spec.costly for stage in stages)


@dataclass(frozen=True)
class SplitCheckpoints:
    """One split's batch checkpoints; inert when `enabled` is False."""

    storage: Storage
    layout: Layout
    part: int
    enabled: bool

    def scored(self, index: int, table: pa.Table,
               score: Callable[[pa.Table], pa.Table]) -> pa.Table:
        """Batch `index` scored: from its checkpoint when one matches, else `score(table)`."""
        if not self.enabled:
            return score(table)
        uri = self.layout.partial(self.part, index)
        if self.storage.exists(uri):
            saved = read_ipc(self.storage, uri)
            if saved.column("id").equals(table.column("id")):
                return saved
        scored = score(table)
        write_table_ipc(self.storage, uri, scored)
        return scored

    def clear(self) -> None:
        """Drop the checkpoints once the split's own outputs and record are written."""
        if self.enabled:
            self.storage.delete(self.layout.partial(self.part), recursive=True)
