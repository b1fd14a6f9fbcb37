"""Stage `color_filter` (CoLoR-Filter): conditional loss reduction under two small LMs.

Both models score every document still in play; the columns are per-token means over the
document, so documents of any length compare (the paper scores fixed 512-token chunks):
    color_score = color_prior_nll - color_cond_nll   (higher: the target teaches it more).
Both models live in one worker (measured faster than one pool per model: one read, and one
tokenization when the conditional model shares the prior's tokenizer, as a fine-tuned one does).
Rows with no scored token get null scores and are never selected. Before scoring the job makes
sure both models exist (`siftline.color.prepare`); after dedupe, one global cut keeps the top
1/tau of the candidates by `color_score` (or a token or character budget, per domain or not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.color.prepare import check_models_config, model_dirs, prepare_models
from siftline.config import ColorFilterConfig, PipelineConfig
from siftline.documents import active_mask, as_table
from siftline.selection.cut import CutRule
from siftline.stages.spec import ScoreCut, StageSpec

PRIOR_COLUMN = "color_prior_nll"
COND_COLUMN = "color_cond_nll"
TOKENS_COLUMN = "color_n_tokens"
SCORE_COLUMN = "color_score"
COLUMNS = (PRIOR_COLUMN, COND_COLUMN, TOKENS_COLUMN, SCORE_COLUMN)


def _same_tokenizer(a: str, b: str) -> bool:
    files = [Path(folder) / "tokenizer.json" for folder in (a, b)]
    return all(f.is_file() for f in files) and files[0].read_bytes() == files[1].read_bytes()


class ColorScore:
    """Holds the prior and conditional scorers; built once per worker."""

    def __init__(self, config: ColorFilterConfig, prior_dir: str, cond_dir: str) -> None:
        from siftline.lm.scorer import DocumentScorer

        self.prior = DocumentScorer.from_folder(prior_dir, config.score)
        self.cond = DocumentScorer.from_folder(cond_dir, config.score)
        self.shared_tokens = _same_tokenizer(prior_dir, cond_dir)

    @classmethod
    def build(cls, config: PipelineConfig) -> ColorScore:
        return cls(config.stages.color_filter, *model_dirs(config))

    def __call__(self, table: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        table = as_table(table)
        active = active_mask(table).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(active)
        texts = table.column("text").take(pa.array(rows, pa.int64())).to_pylist()
        prior_seqs = self.prior.sequences(texts)
        prior = self.prior.score(texts, prior_seqs)
        cond = self.cond.score(texts, prior_seqs if self.shared_tokens else None)
        n = table.num_rows
        columns = {
            PRIOR_COLUMN: _scatter(n, rows, _mean(prior.nll_sum, prior.n_tokens)),
            COND_COLUMN: _scatter(n, rows, _mean(cond.nll_sum, cond.n_tokens)),
            TOKENS_COLUMN: _scatter(n, rows, prior.n_tokens.astype(np.float64)),
        }
        score = pc.subtract(columns[PRIOR_COLUMN], columns[COND_COLUMN])
        columns[TOKENS_COLUMN] = pc.cast(columns[TOKENS_COLUMN], pa.int64())
        for name in (PRIOR_COLUMN, COND_COLUMN, TOKENS_COLUMN):
            table = table.append_column(name, columns[name])
        return table.append_column(SCORE_COLUMN, score)


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _scatter(n: int, rows: np.ndarray, values: np.ndarray) -> pa.Array:
    """Values at `rows`, null elsewhere and where the value is NaN."""
    out = np.full(n, np.nan)
    out[rows] = values
    return pa.array(out, pa.float64(), mask=np.isnan(out))


def _rule(config: PipelineConfig) -> CutRule:
    cfg = config.stages.color_filter
    kind, amount = cfg.rule()
    return CutRule(kind, amount, "top", cfg.per_domain)


SPEC = StageSpec(
    name="color_filter", reason="color_filter", priority=90, build=ColorScore.build,
    columns=COLUMNS, costly=True, gpus=lambda config: config.stages.color_filter.gpus_per_worker,
    preflight=check_models_config, prepare=prepare_models,
    cut=ScoreCut(SCORE_COLUMN, _rule, tokens_column=TOKENS_COLUMN,
                 plot=lambda config: config.stages.color_filter.plot,
                 label="prior NLL - conditional NLL (per token)"),
)
