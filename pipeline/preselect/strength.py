"""Predictive strength (PreSelect, Shum et al. 2025) and the positive/negative labels it yields.

A document has high predictive strength when its normalised loss ranks the reference models the
way their downstream benchmark scores do: lower bits per character <-> higher benchmark score.
    S(doc) = (1/Z) * sum over pairs (i, j) with bench_i != bench_j of 1[C_i, C_j ordered as bench]
Loss ties count as disagreement (they predict nothing); pairs with equal benchmark scores are
skipped (nothing to predict); Z counts the pairs that remain for the document (a model whose BPC
is missing for it, e.g. an empty text, takes no part), so S is in [0, 1] and NaN when Z = 0.
Losses are compared as bits per character, never per token: tokenizers differ across models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _pairs(bench: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose benchmark scores differ; i is always the better model."""
    i, j = np.triu_indices(len(bench), k=1)
    keep = bench[i] != bench[j]
    i, j = i[keep], j[keep]
    better_first = bench[i] > bench[j]
    return np.where(better_first, i, j), np.where(better_first, j, i)


def agreement_counts(bpc: np.ndarray, bench: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(agreeing pairs, counted pairs) per document: the numerator and Z of S."""
    bpc = np.asarray(bpc, dtype=np.float64)
    bench = np.asarray(bench, dtype=np.float64)
    if bpc.ndim != 2 or bench.ndim != 1 or bpc.shape[1] != bench.shape[0]:
        raise ValueError(f"bpc must be [n_docs, n_models] and bench [n_models]; got "
                         f"{bpc.shape} and {bench.shape}")
    if not np.all(np.isfinite(bench)):
        raise ValueError("benchmark scores must be finite")
    better, worse = _pairs(bench)
    c_better, c_worse = bpc[:, better], bpc[:, worse]
    counted = np.isfinite(c_better) & np.isfinite(c_worse)
    with np.errstate(invalid="ignore"):
        agree = counted & (c_better < c_worse)  # strict: a loss tie is a disagreement
    return agree.sum(axis=1), counted.sum(axis=1)


def predictive_strength(bpc: np.ndarray, bench: np.ndarray) -> np.ndarray:
    """S per document (float64 in [0, 1]; NaN where no pair counts).

    `bpc`: `[n_docs, n_models]` bits per character (NaN = not measured); `bench`: `[n_models]`
    downstream scores, higher is better."""
    agree, counted = agreement_counts(bpc, bench)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counted > 0, agree / np.maximum(counted, 1), np.nan)


@dataclass(frozen=True)
class LabelChoice:
    """Row indices of the positives (S = 1) and of as many negatives, lowest S first."""

    positives: np.ndarray
    negatives: np.ndarray


def choose_labels(agree: np.ndarray, counted: np.ndarray, keys: list[str] | None = None,
                  max_per_class: int | None = None) -> LabelChoice:
    """Positives: every document with all counted pairs agreeing (S exactly 1, decided on the
    integer counts, not on a float). Negatives: the same number from the lowest S upward, never a
    positive; equal S is broken by `keys` (document ids), then row, so the choice is stable.
    The classes stay balanced: with fewer other documents than positives, positives are capped
    to the negatives' number (in key order), as `max_per_class` caps both."""
    agree, counted = np.asarray(agree), np.asarray(counted)
    n = len(agree)
    keys = [str(i) for i in range(n)] if keys is None else keys
    order_key = np.argsort(np.array(keys, dtype=object), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order_key] = np.arange(n)
    valid = counted > 0
    positive = valid & (agree == counted)
    pos = np.flatnonzero(positive)
    pos = pos[np.argsort(rank[pos], kind="stable")]
    if max_per_class is not None:
        pos = pos[:max_per_class]
    rest = np.flatnonzero(valid & ~positive)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = agree[rest] / counted[rest]
    rest = rest[np.lexsort((rank[rest], strength))]
    negatives = rest[: len(pos)]
    return LabelChoice(positives=pos[: len(negatives)], negatives=negatives)
