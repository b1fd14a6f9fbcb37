"""Stage `preselect` (PreSelect): a fastText classifier's P(__label__1) per document.

The classifier is loaded once per worker and predicts in batches, over the full probability
vector (k=-1), after the same newline replacement it was trained with. Rows already dropped while
reading (empty, too long) get a null score and are never selected. Before scoring the job makes
sure the classifier exists (`siftline.preselect.build`); after dedupe, one global cut keeps the
best documents up to a share of the candidates' characters (the paper: 10%), or every one at or
above a threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.documents import active_mask, as_table
from siftline.preselect.build import check_preselect_config, classifier_path, prepare_classifier
from siftline.preselect.classifier import load_classifier, positive_probability
from siftline.selection.cut import CutRule
from siftline.stages.spec import ScoreCut, StageSpec

SCORE_COLUMN = "preselect_score"


class PreselectScore:
    """Holds the fastText model; built once per worker."""

    def __init__(self, model_path: str, batch_size: int = 1024) -> None:
        self.model = load_classifier(model_path)
        self.batch_size = batch_size

    @classmethod
    def build(cls, config: PipelineConfig) -> PreselectScore:
        return cls(classifier_path(config), config.stages.preselect.batch_size)

    def __call__(self, table: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        table = as_table(table)
        rows = np.flatnonzero(active_mask(table).to_numpy(zero_copy_only=False))
        texts = table.column("text").take(pa.array(rows, pa.int64())).to_pylist()
        scores = np.full(table.num_rows, np.nan)
        scores[rows] = positive_probability(self.model, texts, self.batch_size)
        return table.append_column(SCORE_COLUMN, pa.array(scores, pa.float64(),
                                                          mask=np.isnan(scores)))


def _rule(config: PipelineConfig) -> CutRule:
    cfg = config.stages.preselect
    kind, amount = cfg.rule()
    return CutRule("share" if kind == "keep" else kind, amount, "top", cfg.per_domain)


SPEC = StageSpec(
    name="preselect", reason="preselect", priority=80, build=PreselectScore.build,
    columns=(SCORE_COLUMN,), costly=True, preflight=check_preselect_config,
    prepare=prepare_classifier, cut=ScoreCut(SCORE_COLUMN, _rule, label="P(__label__1)"),
)
