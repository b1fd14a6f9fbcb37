"""Stage `exact_dedupe`: drop every copy of a text but one, after normalisation.

Per batch, `ExactHash` adds `exact_hash` (`siftline.dedupe.normalize`: NFC, whitespace
collapsed, 128-bit xxh3). After scoring, a shuffle over every part (`siftline.dedupe.exact`)
gives each duplicate `exact_rep`, the id of the copy that is kept (the smallest
(id, part, row) of its hash), and selection drops the rows that have one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import PipelineConfig
from siftline.dedupe.exact import HASH_COLUMN, REP_COLUMN, attach_exact_rep, run_exact_dedupe
from siftline.dedupe.normalize import normalized_hashes
from siftline.documents import as_table
from siftline.stages.spec import GlobalStep, StageSpec


class ExactHash:
    """Adds the `exact_hash` column; the global step decides the duplicates."""

    def __call__(self, table: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        table = as_table(table)
        return table.append_column(HASH_COLUMN, normalized_hashes(table.column("text")))


def _duplicates(table: pa.Table) -> pa.ChunkedArray | None:
    return pc.is_valid(table.column(REP_COLUMN)) if REP_COLUMN in table.column_names else None


def _build(config: PipelineConfig) -> ExactHash:
    return ExactHash()


SPEC = StageSpec(
    name="exact_dedupe", reason="exact_duplicate", priority=10, build=_build,
    columns=(HASH_COLUMN,), drops=_duplicates,
    shuffle=GlobalStep(run=run_exact_dedupe, attach=attach_exact_rep),
)
