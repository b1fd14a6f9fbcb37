"""Stage `classifier`: any fastText classifier's probability of one label, and a cut by it.

The model (DCLM's OH-2.5 quality classifier, PreSelect's released classifier, one a user
trained) is loaded once per worker and predicts in batches over the full probability vector
(k=-1), after the newline replacement fastText needs; `classifier_score` is the probability of
the configured label. Rows already dropped while reading get a null score and are never kept.
The cut is the shared one: a threshold by default, or a share of the characters, or 1/tau.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from siftline.config import PipelineConfig
from siftline.documents import active_mask
from siftline.errors import ConfigError
from siftline.io.storage import Storage, is_remote
from siftline.preselect.classifier import label_probability, load_classifier
from siftline.progress import Reporter
from siftline.selection.cut import CutRule
from siftline.stages.spec import ScoreCut, StageSpec

SCORE_COLUMN = "classifier_score"


class ClassifierScore:
    """Holds the fastText model; built once per worker."""

    def __init__(self, model_path: str, label: str, batch_size: int = 1024) -> None:
        self.model = load_classifier(model_path, label)
        self.label, self.batch_size = label, batch_size

    @classmethod
    def build(cls, config: PipelineConfig) -> ClassifierScore:
        cfg = config.stages.classifier
        return cls(cfg.model, cfg.label, cfg.batch_size)

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = np.flatnonzero(active_mask(table).to_numpy(zero_copy_only=False))
        texts = table.column("text").take(pa.array(rows, pa.int64())).to_pylist()
        scores = np.full(table.num_rows, np.nan)
        scores[rows] = label_probability(self.model, texts, self.label, self.batch_size)
        return table.append_column(SCORE_COLUMN, pa.array(scores, pa.float64(),
                                                          mask=np.isnan(scores)))


def _preflight(config: PipelineConfig) -> None:
    model = config.stages.classifier.model
    if is_remote(model) or not Path(model).is_file():
        raise ConfigError(f"stages.classifier.model: {model} is not a local fastText model file")


def _prepare(config: PipelineConfig, storage: Storage, reporter: Reporter,
             overwrite: bool) -> dict[str, Any]:
    """Load the model once before any work, so a wrong file or label fails with its key."""
    cfg = config.stages.classifier
    try:
        load_classifier(cfg.model, cfg.label)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"stages.classifier: {exc}") from None
    return {"classifier": {"model": cfg.model, "label": cfg.label}}


def _rule(config: PipelineConfig) -> CutRule:
    cfg = config.stages.classifier
    kind, amount = cfg.rule()
    return CutRule(kind, amount, cfg.keep, cfg.per_domain)


SPEC = StageSpec(
    name="classifier", reason="classifier", priority=70, build=ClassifierScore.build,
    columns=(SCORE_COLUMN,), costly=True, preflight=_preflight, prepare=_prepare,
    cut=ScoreCut(SCORE_COLUMN, _rule, plot=lambda config: config.stages.classifier.plot,
                 label="P(label) under the fastText classifier"),
)
