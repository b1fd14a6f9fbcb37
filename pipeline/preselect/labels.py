"""`siftline preselect label`: each reference model's bits per character on a labelling sample,
predictive strength per document, and the positive/negative choice, written as a labels file.

Models are loaded one at a time (a 7B reference model and its neighbours need not share memory)
through the LM engine, so siftline folders and Hugging Face folders both work. The labels file
(JSON Lines) holds every sampled document: id, label (1, 0, or null for the unchosen middle),
strength, the agreeing and counted pairs, characters, every model's BPC, and the text; a
`<labels>.summary.json` beside it records the models, their scores and the counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from siftline.io.storage import Storage
from siftline.io.writers import write_json
from siftline.lm.config import ScoreConfig
from siftline.preselect.strength import agreement_counts, choose_labels


@dataclass(frozen=True)
class Reference:
    name: str
    path: str
    score: float


def model_bpc(references: Sequence[Reference], texts: list[str], score_cfg: ScoreConfig,
              progress: Callable[[str], None] | None = None) -> np.ndarray:
    """`[n_docs, n_models]` bits per character, one model in memory at a time."""
    from siftline.lm.scorer import DocumentScorer

    out = np.full((len(texts), len(references)), np.nan)
    for k, ref in enumerate(references):
        if progress is not None:
            progress(f"scoring {len(texts):,} documents with {ref.name}")
        scorer = DocumentScorer.from_folder(ref.path, score_cfg)
        out[:, k] = scorer.score(texts).bpc
        del scorer
    return out


def label_documents(ids: list[str], texts: list[str], references: Sequence[Reference],
                    score_cfg: ScoreConfig, out_path: str | Path,
                    max_per_class: int | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score, compute S, choose labels, write the labels file; returns the summary."""
    bpc = model_bpc(references, texts, score_cfg, progress)
    return write_labels(ids, texts, bpc, references, out_path, max_per_class)


def write_labels(ids: list[str], texts: list[str], bpc: np.ndarray,
                 references: Sequence[Reference], out_path: str | Path,
                 max_per_class: int | None = None) -> dict[str, Any]:
    """Labels from a BPC matrix already measured (the part that needs no model)."""
    bench = np.array([ref.score for ref in references], dtype=np.float64)
    agree, counted = agreement_counts(bpc, bench)
    # ties and caps follow a hash of the id, not the id itself, whose order can follow sources
    keys = [xxhash.xxh3_64_hexdigest(doc_id.encode("utf-8", "surrogatepass")) + doc_id
            for doc_id in ids]
    choice = choose_labels(agree, counted, keys, max_per_class)
    labels: list[int | None] = [None] * len(ids)
    for row in choice.positives:
        labels[row] = 1
    for row in choice.negatives:
        labels[row] = 0
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row, doc_id in enumerate(ids):
            pairs = int(counted[row])
            record = {
                "id": doc_id, "label": labels[row],
                "strength": int(agree[row]) / pairs if pairs else None,
                "agree": int(agree[row]), "pairs": pairs, "n_chars": len(texts[row]),
                "bpc": {ref.name: _finite(bpc[row, k]) for k, ref in enumerate(references)},
                "text": texts[row],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)
    strength = np.where(counted > 0, agree / np.maximum(counted, 1), np.nan)
    summary = {
        "labels": str(out_path),
        "documents": len(ids),
        "positives": len(choice.positives),
        "negatives": len(choice.negatives),
        "no_pairs": int(np.sum(counted == 0)),
        "mean_strength": _finite(np.nanmean(strength)) if np.any(counted > 0) else None,
        "references": [{"name": r.name, "path": r.path, "score": r.score,
                        "mean_bpc": _finite(np.nanmean(bpc[:, k])) if len(ids) else None}
                       for k, r in enumerate(references)],
    }
    write_json(Storage(), str(out_path) + ".summary.json", summary)
    return summary


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
