"""A fastText classifier as PreSelect's fast scorer: loading, text cleaning, P(__label__1).

fastText reads one example per line, and its `predict` refuses a "\\n", so every newline becomes
a space at training and at prediction alike (the released PreSelect code does the same), keeping
the two sides identical. Any fastText `.bin` whose labels are `__label__1` and `__label__0` (the
released PreSelect classifier, or one trained by `siftline preselect train`) is a drop-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

POSITIVE = "__label__1"
NEGATIVE = "__label__0"


def clean_text(text: str) -> str:
    """One fastText line: every newline replaced by a space (the same at training and scoring)."""
    return text.replace("\n", " ")


def load_classifier(path: str | Path, label: str = POSITIVE) -> Any:
    """Load a fastText model (`.bin`, or a quantized `.ftz`) and check it predicts `label`."""
    import fasttext

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no fastText model there")
    model = fasttext.load_model(str(path))
    labels = set(model.get_labels())
    if label not in labels:
        raise ValueError(f"{path}: the model's labels {sorted(labels)} lack {label}")
    return model


def label_probability(model: Any, texts: Sequence[str], label: str = POSITIVE,
                      batch_size: int = 1024) -> np.ndarray:
    """P(label) per text from the full probability vector (k=-1), in batches.

    Taking the label's probability from all labels (not the top-1 label's probability) is what
    makes the score rank documents; a label fastText never saw in a text gets 0."""
    out = np.empty(len(texts), dtype=np.float64)
    for start in range(0, len(texts), batch_size):
        chunk = [clean_text(t) for t in texts[start:start + batch_size]]
        labels, probs = model.predict(chunk, k=-1)
        for offset, (names, values) in enumerate(zip(labels, probs, strict=True)):
            hit = [p for name, p in zip(names, values, strict=True) if name == label]
            out[start + offset] = min(1.0, max(0.0, float(hit[0]))) if hit else 0.0
    return out


def positive_probability(model: Any, texts: Sequence[str], batch_size: int = 1024) -> np.ndarray:
    """P(__label__1): PreSelect's score."""
    return label_probability(model, texts, POSITIVE, batch_size)
