"""Stage `preselect` (PreSelect): a fastText classifier's P(__label__1) per document.

The classifier is loaded once per worker and predicts in batches, over the full probability
vector (k=-1), after the same newline replacement it was trained with. Rows already dropped while
reading (empty, too long) get a null score and are never selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.documents import active_mask, as_table
from siftline.io.storage import join
from siftline.preselect.classifier import load_classifier, positive_probability

SCORE_COLUMN = "preselect_score"
CLASSIFIER_FILE = "classifier.bin"


def models_dir(config: PipelineConfig) -> str:
    """Where the job builds the classifier, its labels and reference LMs."""
    cfg = config.stages.preselect
    return cfg.models_dir or join(config.output.path, "models", "preselect")


def classifier_path(config: PipelineConfig) -> str:
    """The configured fastText model, or the one the job builds."""
    cfg = config.stages.preselect
    return cfg.model if cfg.model is not None else join(models_dir(config), CLASSIFIER_FILE)


class PreselectScore:
    """Holds the fastText model; built once per worker."""

    name = "preselect"
    checkpoint_batches = True  # a model per batch: a lost worker keeps what it scored

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
