"""Stage `c4_quality`: C4's rules as a judgement of the whole document (Raffel et al. 2020).

Measures what C4's line removal would leave (`siftline.quality.c4`): its sentences, its share of
the characters, and whether a kept line says "lorem ipsum" or holds a curly bracket. The text is
never rewritten: the removed lines stay in the output. `stages.c4_quality` holds the limits, and
the first rule that fails is named in `c4_quality_rule`.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.quality.c4 import MEASURES, LineRules, measure
from siftline.stages.spec import StageSpec
from siftline.stages.thresholds import MeasureStage, Threshold, column_names, failing_rule

NAME = "c4_quality"
RULES = (
    Threshold("filter_lorem_ipsum", "lorem_ipsum", "flag"),
    Threshold("filter_curly_bracket", "curly_bracket", "flag"),
    Threshold("min_num_sentences", "sentences", "min"),
    Threshold("min_kept_share", "kept_share", "min"),
)


def line_rules(config: PipelineConfig) -> LineRules:
    cfg = config.stages.c4_quality
    return LineRules(cfg.remove_citations, cfg.filter_no_terminal_punct, cfg.min_words_per_line,
                     cfg.max_word_length, cfg.filter_javascript, cfg.filter_policy)


def _build(config: PipelineConfig) -> MeasureStage:
    return MeasureStage(NAME, MEASURES, partial(measure, rules=line_rules(config)))


def _rules(table: pa.Table, config: PipelineConfig) -> pa.Array | None:
    return failing_rule(table, NAME, RULES, config.stages.c4_quality)


SPEC = StageSpec(name=NAME, reason=NAME, priority=8, build=_build,
                 columns=column_names(NAME, MEASURES), rules=_rules)
