"""`siftline preselect train`: a fastText classifier from labelled documents.

Lines are `__label__1 <text>` / `__label__0 <text>`, newlines replaced by a space (as at
prediction), in a seeded shuffled order (fastText's SGD reads the file in order, so classes must
be interleaved). A seeded hash of each id holds some documents out; precision, recall and ROC AUC
on them are reported beside the model. The model file is written under a temporary name and
renamed into place, so a half-written classifier is never picked up.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siftline.io.storage import Storage
from siftline.io.writers import write_json
from siftline.preselect.classifier import clean_text, load_classifier, positive_probability
from siftline.preselect.config import FastTextConfig
from siftline.preselect.metrics import binary_metrics

HOLDOUT_PURPOSE = "preselect-holdout"


@dataclass(frozen=True)
class Example:
    id: str
    label: int  # 1 or 0
    text: str


def read_examples(labels_path: str | Path) -> Iterator[Example]:
    """The labelled rows of a labels file (rows with a null label are the unchosen middle)."""
    with open(labels_path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if record.get("label") in (0, 1):
                    yield Example(str(record["id"]), int(record["label"]), record["text"])


def split_examples(examples: list[Example], fraction: float,
                   seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held out) by a seeded hash of each id: stable however the labels were made."""
    if fraction <= 0:
        return examples, []
    from siftline.lm.data import unit_hash

    held = [unit_hash(ex.id, seed, HOLDOUT_PURPOSE) < fraction for ex in examples]
    return ([ex for ex, h in zip(examples, held, strict=True) if not h],
            [ex for ex, h in zip(examples, held, strict=True) if h])


def write_training_file(examples: Iterable[Example], path: Path, seed: int) -> int:
    lines = [f"__label__{ex.label} {clean_text(ex.text)}\n" for ex in examples]
    random.Random(seed).shuffle(lines)
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


# fastText (0.9.2, fasttext-numpy2-wheel) trains on memory it never initialises: the same
# data, seed and lr failed "Encountered NaN" in 16 of 16 fresh processes when glibc filled new
# allocations with garbage (MALLOC_PERTURB_=1), in 0 of 16 when it zeroed them
# (MALLOC_PERTURB_=255), and in between by the luck of the heap without the variable (5 of 12
# here; every try in one clean-clone test run). So each training runs in its own short-lived
# interpreter (a second training in one process failed often) with allocations zeroed
# (ZEROED_MALLOC). A learning rate too high still diverges for real: then each learning rate
# is tried twice before it is halved, up to MAX_ATTEMPTS tries, and the report records the lr.
ZEROED_MALLOC = {"MALLOC_PERTURB_": "255"}  # glibc: new allocations are filled with 255 ^ 255
MAX_ATTEMPTS = 8
TRIES_PER_LR = 2


class DivergedError(RuntimeError):
    """fastText's "Encountered NaN"."""


_TRAIN_SCRIPT = """
import json, sys
import fasttext
args = json.loads(sys.argv[1])
out = args.pop("output")
fasttext.train_supervised(**args).save_model(out)
"""


def _train_in_subprocess(text_file: Path, out: Path, cfg: FastTextConfig) -> None:
    args = {"input": str(text_file), "output": str(out), "lr": cfg.lr, "dim": cfg.dim,
            "epoch": cfg.epoch, "wordNgrams": cfg.word_ngrams, "minn": cfg.minn,
            "maxn": cfg.maxn, "minCount": cfg.min_count, "loss": cfg.loss,
            "bucket": cfg.bucket, "thread": cfg.threads, "seed": cfg.seed, "verbose": 0}
    done = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, json.dumps(args)],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, **ZEROED_MALLOC})
    if done.returncode != 0:
        lines = (done.stderr or "").strip().splitlines()
        last = lines[-1] if lines else str(done.returncode)
        if "Encountered NaN" in last:
            raise DivergedError(last)
        raise ValueError(f"fastText training failed: {last}")


def train_fasttext(examples: list[Example], cfg: FastTextConfig,
                   out_path: str | Path) -> dict[str, Any]:
    """Train on `examples` (minus the hold-out), save to `out_path`, return the report."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    train, held = split_examples(examples, cfg.holdout_fraction, cfg.seed)
    classes = {ex.label for ex in train}
    if classes != {0, 1}:
        raise ValueError(f"training needs both labels 0 and 1; the training split has "
                         f"{sorted(classes) or 'none'} ({len(train)} examples)")
    text_file = out_path.with_name(out_path.name + ".train.txt")
    write_training_file(train, text_file, cfg.seed)
    tmp = out_path.with_name(out_path.name + ".tmp")
    lr = cfg.lr
    try:
        for attempt in range(MAX_ATTEMPTS):
            try:
                _train_in_subprocess(text_file, tmp, cfg.model_copy(update={"lr": lr}))
                break
            except DivergedError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise ValueError(f"fastText diverged (NaN) down to lr {lr:g} on "
                                     f"{len(train)} examples; raise dim or bucket") from None
                if attempt % TRIES_PER_LR == TRIES_PER_LR - 1:
                    lr /= 2
    finally:
        text_file.unlink(missing_ok=True)
    os.replace(tmp, out_path)
    report: dict[str, Any] = {
        "model": str(out_path),
        "train": {"n": len(train), "positives": sum(ex.label for ex in train)},
        "fasttext": cfg.model_dump(),
        "lr_used": lr,
    }
    if held:
        scores = positive_probability(load_classifier(out_path), [ex.text for ex in held])
        report["heldout"] = binary_metrics(np.array([ex.label for ex in held]), scores)
    return report


def train_from_labels(labels_path: str | Path, cfg: FastTextConfig,
                      out_path: str | Path) -> dict[str, Any]:
    """Train from a labels file and write the report beside the model (`<model>.json`)."""
    report = train_fasttext(list(read_examples(labels_path)), cfg, out_path)
    report["labels"] = str(labels_path)
    write_json(Storage(), str(out_path) + ".json", report)
    return report
