"""Stage `language`: fastText language identification (lid.176), and datatrove's keep rule.

Every row still in play gets its top `language` and `language_score` (the label's probability,
as datatrove's FT176LID gives them); rows dropped while reading get nulls. A row is kept when a
wanted language scores above the threshold (`>`, datatrove's LanguageFilter). At a threshold of
0.5 or more only the top label can, but below it another language can, so the stage also keeps
`language_others`, every other label scoring at least `language_floor` (0.1, or the threshold
when lower): selection decides from these columns alone, and `siftline select` re-decides for
other languages or any threshold down to the floor without loading the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import PipelineConfig
from siftline.documents import LOCAL_REASONS, active_mask
from siftline.errors import ConfigError
from siftline.io.storage import Storage, is_remote
from siftline.langid.model import BUNDLED_NAME, load_lid, predict_language_scores
from siftline.progress import Reporter
from siftline.stages.spec import StageSpec

NAME = "language"
OTHERS_FLOOR = 0.1  # other languages are recorded down to this probability (or the threshold)
OTHER = pa.struct([pa.field("language", pa.string()), pa.field("score", pa.float64())])
COLUMNS = ("language", "language_score", "language_others", "language_floor")


def floor_of(threshold: float) -> float:
    """The probability down to which other languages are recorded: low enough that `select`
    can lower the threshold somewhat, and never above the threshold scored with."""
    return min(OTHERS_FLOOR, threshold)


class LanguageID:
    """Holds the fastText model; built once per worker."""

    def __init__(self, model_path: str | None, threshold: float, batch_size: int = 1024) -> None:
        self.model = load_lid(model_path)
        self.floor, self.batch_size = floor_of(threshold), batch_size

    @classmethod
    def build(cls, config: PipelineConfig) -> LanguageID:
        cfg = config.stages.language
        return cls(cfg.model, cfg.threshold, cfg.batch_size)

    def __call__(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        active = np.asarray(active_mask(table).to_numpy(zero_copy_only=False), bool)
        rows = np.flatnonzero(active)
        texts = table.column("text").take(pa.array(rows, pa.int64())).to_pylist()
        found = predict_language_scores(self.model, texts, self.batch_size, self.floor)
        languages: list[str | None] = [None] * n
        for row, language in zip(rows.tolist(), found.languages, strict=True):
            languages[row] = language
        scores = np.full(n, np.nan)
        scores[rows] = found.scores
        counts = np.zeros(n, np.int32)
        counts[rows] = np.diff(found.others_offsets)
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        others = pa.StructArray.from_arrays(
            [pa.array(found.others_languages, pa.string()),
             pa.array(found.others_scores, pa.float64())], fields=list(OTHER))
        inactive = pa.array(~active)
        floor = np.full(n, self.floor)
        return (table
                .append_column("language", pa.array(languages, pa.string()))
                .append_column("language_score", pa.array(scores, pa.float64(),
                                                          mask=np.isnan(scores)))
                .append_column("language_others", pa.ListArray.from_arrays(
                    pa.array(offsets, pa.int32()), others, type=pa.list_(OTHER), mask=inactive))
                .append_column("language_floor", pa.array(floor, pa.float64(), mask=~active)))


def wanted_above(table: pa.Table, languages: list[str], threshold: float) -> np.ndarray:
    """Per row: does a wanted language score above the threshold (the top label or one of
    `language_others`)? datatrove's `any(score > threshold)` over the wanted languages."""
    wanted = pa.array(languages, pa.string())
    top = pc.and_(pc.is_in(table.column("language"), value_set=wanted),
                  pc.greater(table.column("language_score"), threshold))
    keep = np.asarray(pc.fill_null(top, False).to_numpy(zero_copy_only=False), bool).copy()
    others = table.column("language_others").combine_chunks()
    flat = pc.list_flatten(others)
    if len(flat):
        hit = pc.and_(pc.is_in(pc.struct_field(flat, "language"), value_set=wanted),
                      pc.greater(pc.struct_field(flat, "score"), threshold))
        parents = pc.list_parent_indices(others).to_numpy(zero_copy_only=False)
        keep[parents[np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False),
                                bool)]] = True
    return keep


def _rules(table: pa.Table, config: PipelineConfig) -> pa.Array | None:
    """`language` where the row is dropped: no wanted language above the threshold, or no
    language at all on a row still in play; null elsewhere. None without the stage's columns."""
    if any(column not in table.column_names for column in COLUMNS):
        return None
    cfg = config.stages.language
    floor = pc.max(table.column("language_floor")).as_py()
    if floor is not None and cfg.threshold < floor:
        raise ConfigError(
            f"stages.language.threshold: {cfg.threshold} is below {floor}, the probability down "
            "to which the run recorded other languages (language_floor); run the job again "
            "(--overwrite) with this threshold to score below it")
    local = pc.fill_null(pc.is_in(table.column("drop_reason"),
                                  value_set=pa.array(LOCAL_REASONS)), False)
    dropped = ~wanted_above(table, cfg.languages, cfg.threshold) & ~np.asarray(
        local.to_numpy(zero_copy_only=False), bool)
    return pc.if_else(pa.array(dropped), NAME, pa.scalar(None, pa.string()))


def _model_name(config: PipelineConfig) -> str:
    return config.stages.language.model or BUNDLED_NAME


def _preflight(config: PipelineConfig) -> None:
    """The model is a local file that loads as a language identifier, before any work."""
    model = config.stages.language.model
    if model is not None and (is_remote(model) or not Path(model).is_file()):
        raise ConfigError(f"stages.language.model: {model} is not a local fastText model file")
    try:
        load_lid(model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"stages.language.model: {exc}") from None


def _prepare(config: PipelineConfig, storage: Storage, reporter: Reporter,
             overwrite: bool) -> dict[str, Any]:
    cfg = config.stages.language
    return {"language": {"model": _model_name(config), "languages": list(cfg.languages),
                         "threshold": cfg.threshold}}


SPEC = StageSpec(
    name=NAME, reason=NAME, priority=4, build=LanguageID.build, columns=COLUMNS, costly=True,
    preflight=_preflight, prepare=_prepare, rules=_rules,
)
