"""Stage `fineweb_quality`: FineWeb's own rules (Penedo et al. 2024, §3.3).

Measures, over the non-blank lines, the share ending in sentence-final punctuation, the share of
short lines, the characters in duplicated lines, and newlines per word
(`siftline.quality.fineweb`); `stages.fineweb_quality` holds the limits, and the first rule that
fails is named in `fineweb_quality_rule`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import PipelineConfig
from siftline.quality.fineweb import MEASURES, measure
from siftline.stages.spec import StageSpec
from siftline.stages.thresholds import MeasureStage, Threshold, column_names, failing_rule

NAME = "fineweb_quality"
RULES = (
    Threshold("line_punct_thr", "line_punct_ratio", "min"),
    Threshold("short_line_thr", "short_line_ratio", "max"),
    Threshold("char_duplicates_ratio", "char_dup_ratio", "max"),
    Threshold("new_line_ratio", "new_line_ratio", "max"),
)
PUNCT_COLUMN = f"{NAME}_line_punct_ratio"


def _build(config: PipelineConfig) -> MeasureStage:
    length = config.stages.fineweb_quality.short_line_length
    return MeasureStage(NAME, MEASURES, partial(measure, short_line_length=length))


def _rules(table: pa.Table, config: PipelineConfig) -> pa.Array | None:
    section = config.stages.fineweb_quality
    if section.line_punct_exclude_zero and PUNCT_COLUMN in table.column_names:
        ratio = table.column(PUNCT_COLUMN)
        exempt = pc.fill_null(pc.equal(ratio, 0.0), False)
        table = table.set_column(table.column_names.index(PUNCT_COLUMN), PUNCT_COLUMN,
                                 pc.if_else(exempt, pa.scalar(np.nan), ratio))
    return failing_rule(table, NAME, RULES, section)


SPEC = StageSpec(name=NAME, reason=NAME, priority=7, build=_build,
                 columns=column_names(NAME, MEASURES), rules=_rules)
