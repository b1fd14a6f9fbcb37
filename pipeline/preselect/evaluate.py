"""`siftline eval-lm`: a small LM's downstream score, for the offline reference family.

Multiple choice (`{query, choices, gold}` JSON Lines): each choice's log-likelihood given the
query, log p(query + " " + choice) - log p(query) from the LM engine's document NLLs, summed (or
per character with `length_norm`, lm-eval's acc_norm); the prediction is the argmax, the score
the accuracy. Text: the score is minus the bits per character over all texts (lower loss is
better, and BPC compares models with different tokenizers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siftline.color.target import (
    auto_kind,
    eval_text,
    expand_target_paths,
    gold_choice,
    load_target_texts,
    read_records,
)
from siftline.config import InputConfig, TargetConfig
from siftline.io.storage import Storage
from siftline.lm.config import ScoreConfig
from siftline.preselect.config import EvalSetConfig


@dataclass
class Question:
    query: str
    choices: list[str]
    gold: int


@dataclass
class EvalSet:
    kind: str  # "choice" | "loss"
    questions: list[Question] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.questions) if self.kind == "choice" else len(self.texts)


def load_eval_set(cfg: EvalSetConfig, corpus: InputConfig | None = None,
                  storage: Storage | None = None) -> EvalSet:
    """Questions or texts, in file order, at most `max_examples`."""
    storage = storage or Storage()
    limit = cfg.max_examples
    if cfg.domain is not None:
        target = TargetConfig(domain=cfg.domain, holdout_fraction=cfg.holdout_fraction,
                              seed=cfg.seed)
        texts = load_target_texts(target, corpus or InputConfig(), storage)
        return EvalSet("loss", texts=texts[:limit])
    files = expand_target_paths(cfg.paths, storage)
    kind = cfg.kind
    if kind == "auto":
        kind = "choice" if all(_is_eval_records(uri, storage) for uri in files) else "loss"
    if kind == "loss":
        texts = load_target_texts_from_paths(cfg.paths, storage)
        return EvalSet("loss", texts=texts[:limit])
    questions: list[Question] = []
    for uri in files:
        for line, rec in read_records(uri, storage):
            if limit is not None and len(questions) >= limit:
                break
            eval_text(rec, uri, line)  # checks query, choices and gold, naming the line
            answer = gold_choice(rec["gold"], rec["choices"], uri, line)
            choices = [str(c) for c in rec["choices"]]
            questions.append(Question(str(rec["query"]), choices, choices.index(answer)))
    return EvalSet("choice", questions=questions)


def _is_eval_records(uri: str, storage: Storage) -> bool:
    """A JSON Lines file whose first record has query, choices and gold."""
    if auto_kind(uri) != "records":
        return False
    first = next((rec for _, rec in read_records(uri, storage)), {})
    return {"query", "choices", "gold"} <= set(first)


def load_target_texts_from_paths(paths: list[str], storage: Storage) -> list[str]:
    return load_target_texts(TargetConfig(paths=paths), InputConfig(), storage)


def choice_loglik(nll_full: np.ndarray, nll_query: np.ndarray) -> np.ndarray:
    """Log-likelihood of the continuation: -(NLL(query + choice) - NLL(query))."""
    return -(nll_full - nll_query)


def continuation_sequences(scorer: Any, data: EvalSet) -> tuple[list[str], list[list[int]]]:
    """Each query + choice as texts and as token ids: the query's ids, then those of " choice"
    encoded on their own (as lm-eval does), so no token straddles the boundary and the query's
    tokens are exactly those its own NLL was taken over."""
    query_seqs = scorer.sequences([q.query for q in data.questions])
    choices = [f" {c}" for q in data.questions for c in q.choices]
    cont = iter(scorer.model.tokenizer.encode_batch(choices))
    seqs = [seq + next(cont) for q, seq in zip(data.questions, query_seqs, strict=True)
            for _ in q.choices]
    texts = [f"{q.query} {c}" for q in data.questions for c in q.choices]
    return texts, seqs


def evaluate_scorer(scorer: Any, data: EvalSet, length_norm: bool = False) -> dict[str, Any]:
    """Score one loaded model (a `DocumentScorer`) on an eval set."""
    if len(data) == 0:
        raise ValueError("the eval set is empty")
    if data.kind == "loss":
        scores = scorer.score(data.texts)
        bpc = float(scores.nll_sum.sum() / (scores.n_chars.sum() * math.log(2)))
        return {"kind": "loss", "n": len(data.texts), "bpc": bpc, "score": -bpc}
    queries = [q.query for q in data.questions]
    fulls, full_seqs = continuation_sequences(scorer, data)
    nll_q = scorer.score(queries).nll_sum
    nll_f = scorer.score(fulls, seqs=full_seqs).nll_sum
    correct, offset = 0, 0
    for i, q in enumerate(data.questions):
        ll = choice_loglik(nll_f[offset:offset + len(q.choices)], nll_q[i])
        if length_norm:
            ll = ll / np.array([max(len(c) + 1, 1) for c in q.choices])
        correct += int(np.argmax(ll)) == q.gold
        offset += len(q.choices)
    accuracy = correct / len(data.questions)
    return {"kind": "choice", "n": len(data.questions), "accuracy": accuracy, "score": accuracy,
            "chance": float(np.mean([1 / len(q.choices) for q in data.questions]))}


def evaluate_lm(folder: str, data: EvalSet, score_cfg: ScoreConfig | None = None,
                length_norm: bool = False) -> dict[str, Any]:
    """Load a model folder (siftline or Hugging Face) and score it on `data`."""
    from siftline.lm.scorer import DocumentScorer

    result = evaluate_scorer(DocumentScorer.from_folder(folder, score_cfg), data, length_norm)
    return {"model": folder, **result}
