"""PreSelect's fastText training path on real human labels: DCLM's labelled Common Crawl sample.

Train the classifier on one half of `dclm_labeled.jsonl` (even rows) with the human labels,
score the other half (odd rows) with P(__label__1), report ROC AUC, precision and recall at 0.5,
and the scoring throughput of the stage's predict path. A sanity check of training and scoring,
not of PreSelect's labels (those need reference models).

    python scripts/bench_preselect_dclm.py                         # the paper's settings
    python scripts/bench_preselect_dclm.py --bucket 200000 --dim 100 --epoch 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from siftline.preselect.classifier import load_classifier, positive_probability
from siftline.preselect.config import FastTextConfig
from siftline.preselect.fasttext_train import Example, train_fasttext
from siftline.preselect.metrics import binary_metrics

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "web" / "dclm_labeled.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT))
    parser.add_argument("--bucket", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epoch", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    rows = [json.loads(x) for x in Path(args.data).read_text(encoding="utf-8").splitlines()]
    examples = [Example(f"dclm{i}", int(r["label"]), r["text"]) for i, r in enumerate(rows)]
    train, test = examples[0::2], examples[1::2]
    cfg = FastTextConfig(bucket=args.bucket, dim=args.dim, epoch=args.epoch, lr=args.lr,
                         holdout_fraction=0.0)
    with tempfile.TemporaryDirectory(prefix="bench_preselect_") as tmp:
        start = time.perf_counter()
        report = train_fasttext(train, cfg, Path(tmp) / "dclm.bin")
        train_s = time.perf_counter() - start
        model = load_classifier(Path(tmp) / "dclm.bin")
        texts = [ex.text for ex in test]
        start = time.perf_counter()
        scores = positive_probability(model, texts)
        predict_s = time.perf_counter() - start
        size = (Path(tmp) / "dclm.bin").stat().st_size
    metrics = binary_metrics(np.array([ex.label for ex in test]), scores)
    chars = sum(len(t) for t in texts)
    print(json.dumps({
        "train_docs": len(train), "test_docs": len(test),
        "train_positives": sum(ex.label for ex in train), "settings": cfg.model_dump(),
        "lr_used": report["lr_used"], "train_s": round(train_s, 2), "model_bytes": size,
        "roc_auc": metrics["roc_auc"], "precision": metrics["precision"],
        "recall": metrics["recall"], "accuracy": metrics["accuracy"],
        "predict_docs_per_s": round(len(texts) / predict_s),
        "predict_mb_per_s": round(chars / predict_s / 1e6, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
