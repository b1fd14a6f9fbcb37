"""A worker's stages, built once, applied to every batch with the stage contract checked.

The contract: a stage returns a pyarrow Table with the same rows in the same order (the same
ids), every column it was given, and the columns it declares. A stage that breaks it, or a
user's stage that raises, stops the job with a `StageError` naming the stage and a document
(the caller adds the input file); nothing is dropped or reordered silently.

Cleaning comes before the expensive scorers: a costly stage (a model per batch) sees the rows
that the rule stages before it drop (language ID, the quality rules) as already dropped, so it
leaves them unscored, as datatrove's and Dolma's pipelines never score what an earlier filter
removed. Only the costly stage sees those provisional reasons; the batch keeps its own, and
selection decides every reason again from the persisted columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import PipelineConfig
from siftline.documents import add_local_reasons, make_table
from siftline.errors import StageError
from siftline.stages.registry import enabled_specs
from siftline.stages.spec import Stage, StageSpec

SEARCH_ROWS = 10_000  # rows tried one by one to find the document a failing stage raised on


@dataclass(frozen=True)
class BuiltStage:
    """A stage as a worker holds it: its declaration and its per-batch callable."""

    spec: StageSpec
    fn: Stage

    def __call__(self, table: pa.Table) -> pa.Table:
        try:
            out = self.fn(table)
        except StageError:
            raise
        except Exception as exc:
            if self.spec.builtin:
                raise
            raise StageError(f"stage {self.spec.name!r} raised {type(exc).__name__}: {exc} "
                             f"({_where(self.fn, table)})") from exc
        check_contract(self.spec, table, out)
        return out


def build_stages(config: PipelineConfig) -> list[BuiltStage]:
    """Once per worker: every enabled stage, models loaded."""
    return [BuiltStage(spec, spec.build(config)) for spec in enabled_specs(config)]


def apply_stages(table: pa.Table, stages: list[BuiltStage], max_doc_bytes: int,
                 config: PipelineConfig | None = None) -> pa.Table:
    """Reading-time reasons first, then every stage in order; with the config, each costly
    stage skips the rows the rule stages applied before it drop."""
    table = add_local_reasons(table, max_doc_bytes)
    judges: list[StageSpec] = []
    for stage in stages:
        if stage.spec.costly and judges and config is not None:
            table = _without_judged(stage, table, judges, config)
        else:
            table = stage(table)
        if stage.spec.rules is not None:
            judges.append(stage.spec)
    return table


def _without_judged(stage: BuiltStage, table: pa.Table, judges: list[StageSpec],
                    config: PipelineConfig) -> pa.Table:
    """Run `stage` with the judges' drops as provisional reasons, then restore the batch's."""
    index = table.column_names.index("drop_reason")
    reasons = [table.column("drop_reason")]
    for spec in judges:
        if spec.priority < stage.spec.priority:
            failed = spec.rules(table, config)
            if failed is not None:
                reasons.append(pc.if_else(pc.is_valid(failed), spec.reason,
                                          pa.scalar(None, pa.string())))
    provisional = pc.coalesce(*reasons) if len(reasons) > 1 else reasons[0]
    out = stage(table.set_column(index, "drop_reason", provisional))
    return out.set_column(index, "drop_reason", table.column("drop_reason"))


def empty_scored_table(stages: list[BuiltStage], max_doc_bytes: int,
                       config: PipelineConfig | None = None) -> pa.Table:
    """The schema a split's scored table has, built by running the stages on zero rows."""
    return apply_stages(make_table([], [], [], []), stages, max_doc_bytes, config)


def check_contract(spec: StageSpec, given: pa.Table, out: object) -> None:
    """Raise StageError unless `out` is `given` with columns added."""
    name = spec.name
    if not isinstance(out, pa.Table):
        raise StageError(f"stage {name!r} returned {type(out).__name__}, not a pyarrow Table")
    if out.num_rows != given.num_rows:
        raise StageError(f"stage {name!r} returned {out.num_rows} rows for {given.num_rows}: "
                         "stages add columns and never drop or add rows")
    missing = [c for c in (*given.column_names, *spec.columns) if c not in out.column_names]
    if missing:
        raise StageError(f"stage {name!r} returned a table without the column(s) {missing}: "
                         "stages keep every column they are given and add the ones they "
                         "declare")
    if given.num_rows and not _same_ids(given.column("id"), out.column("id")):
        raise StageError(f"stage {name!r} changed the documents' ids or their order: stages "
                         "keep rows in place")


def _same_ids(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    """Equal ids; the same buffers (the stage kept the column) answer without a comparison."""
    def layout(column: pa.ChunkedArray) -> list[tuple[int, int, tuple[int, ...]]]:
        return [(c.offset, len(c), tuple(x.address if x is not None else 0 for x in c.buffers()))
                for c in column.chunks]

    return layout(a) == layout(b) or a.equals(b)


def _where(fn: Stage, table: pa.Table) -> str:
    """The document a stage raises on alone, found row by row; else the batch's first id."""
    ids = table.column("id")
    for row in range(min(table.num_rows, SEARCH_ROWS)):
        try:
            fn(table.slice(row, 1))
        except Exception:
            return f"on document {ids[row].as_py()!r}"
    first = ids[0].as_py() if table.num_rows else None
    return f"on a batch of {table.num_rows} documents from {first!r}"
