"""Stage `gopher_repetition`: MassiveText's repetition rules (Rae et al. 2021, Table A1).

Measures duplicated paragraphs and lines (by count and by characters), the characters the most
frequent n-gram covers (n = 2..4) and the characters in repeated n-grams (n = 5..10), as shares
of the document (`siftline.quality.gopher`); the limits in `stages.gopher_repetition` judge
them at selection, and the first rule that fails is named in `gopher_repetition_rule`
(`dup_line_frac`, `top_3_gram`, `dup_7_gram`, ...).
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa

from siftline.config import DUP_NGRAMS, TOP_NGRAMS, PipelineConfig
from siftline.quality.gopher import measure_repetition, repetition_measures
from siftline.stages.spec import StageSpec
from siftline.stages.thresholds import MeasureStage, Threshold, column_names, failing_rule

NAME = "gopher_repetition"
MEASURES = repetition_measures(TOP_NGRAMS, DUP_NGRAMS)
RULES = tuple(Threshold(measure, measure, "max") for measure in MEASURES)


def _build(config: PipelineConfig) -> MeasureStage:
    return MeasureStage(NAME, MEASURES,
                        partial(measure_repetition, top_ns=TOP_NGRAMS, dup_ns=DUP_NGRAMS))


def _rules(table: pa.Table, config: PipelineConfig) -> pa.Array | None:
    section = config.stages.gopher_repetition
    return failing_rule(table, NAME, RULES, section, section.limit)


SPEC = StageSpec(name=NAME, reason=NAME, priority=6, build=_build,
                 columns=column_names(NAME, MEASURES), rules=_rules)
