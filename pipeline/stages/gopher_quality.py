"""Stage `gopher_quality`: MassiveText's quality rules (Rae et al. 2021, §A.1.1).

Measures words, mean word length, '#' and ellipses per word, bullet and ellipsis lines, the
share of words with a letter and the stop words present (`siftline.quality.gopher`); the rules
in `stages.gopher_quality` judge them at selection, in datatrove's order, and the first that
fails is named in `gopher_quality_rule`.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.quality.gopher import QUALITY_MEASURES, measure_quality
from siftline.stages.spec import StageSpec
from siftline.stages.thresholds import MeasureStage, Threshold, column_names, failing_rule

NAME = "gopher_quality"
RULES = (
    Threshold("min_doc_words", "words", "min"),
    Threshold("max_doc_words", "words", "max"),
    Threshold("min_avg_word_length", "mean_word_length", "min"),
    Threshold("max_avg_word_length", "mean_word_length", "max"),
    Threshold("max_hash_ratio", "hash_ratio", "max"),
    Threshold("max_ellipsis_ratio", "ellipsis_ratio", "max"),
    Threshold("max_bullet_lines_ratio", "bullet_lines_ratio", "max"),
    Threshold("max_ellipsis_lines_ratio", "ellipsis_lines_ratio", "max"),
    Threshold("min_alpha_words_ratio", "alpha_words_ratio", "min"),
    Threshold("min_stop_words", "stop_words", "min"),
)


def _build(config: PipelineConfig) -> MeasureStage:
    stop_words = tuple(config.stages.gopher_quality.stop_words)
    return MeasureStage(NAME, QUALITY_MEASURES, partial(measure_quality, stop_words=stop_words))


def _rules(table: pa.Table, config: PipelineConfig) -> pa.Array | None:
    return failing_rule(table, NAME, RULES, config.stages.gopher_quality)


SPEC = StageSpec(name=NAME, reason=NAME, priority=5, build=_build,
                 columns=column_names(NAME, QUALITY_MEASURES), rules=_rules)
