"""fastText language identification: the bundled lid.176.ftz, loading, batched prediction.

Prediction follows datatrove's `FT176LID` (what FineWeb filtered with): newlines become spaces
(fastText reads one line per example and its `predict` refuses a "\\n"), and a language code is
the label without `__label__`. A document's language is the top label, its score that label's
probability. Whether a document is in one of the wanted languages is datatrove's
`LanguageFilter` rule, `any(score > threshold)` over the wanted languages' probabilities: at a
threshold of 0.5 or more only the top label can pass (probabilities sum to 1), below it another
one can, so `predict_language_scores` also returns every other label at or above a floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LABEL_PREFIX = "__label__"
# A plain file beside this module (package data; see setup.py): fastText opens models by path,
# so the package must be installed unzipped, as pip installs wheels.
BUNDLED_MODEL = Path(__file__).with_name("lid.176.ftz")
BUNDLED_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
BUNDLED_NAME = "bundled lid.176.ftz"


def clean_text(text: str) -> str:
    """One fastText line, as datatrove's FT176LID feeds it: every newline becomes a space."""
    return text.replace("\n", " ")


def load_lid(path: str | Path | None = None) -> Any:
    """A fastText language identifier: None loads the bundled lid.176.ftz; any other fastText
    model whose labels are `__label__<code>` (the full lid.176.bin, ...) works the same way."""
    import fasttext

    file = BUNDLED_MODEL if path is None else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no fastText model there")
    model = fasttext.load_model(str(file))
    labels = model.get_labels()
    if not labels or not all(str(label).startswith(LABEL_PREFIX) for label in labels):
        raise ValueError(f"{file}: not a fastText classifier with {LABEL_PREFIX}<language> labels")
    return model


def predict_languages(model: Any, texts: Sequence[str], batch_size: int = 1024
                      ) -> tuple[list[str | None], np.ndarray]:
    """The top language (code without `__label__`) and its probability per text, from
    fastText's batched predict with k=1; None and NaN where the model predicts nothing."""
    languages: list[str | None] = []
    scores = np.full(len(texts), np.nan)
    cut = len(LABEL_PREFIX)
    for start in range(0, len(texts), batch_size):
        labels, probs = model.predict([clean_text(t) for t in texts[start:start + batch_size]],
                                      k=1)
        for offset, (names, values) in enumerate(zip(labels, probs, strict=True)):
            if len(names):
                languages.append(names[0][cut:])
                scores[start + offset] = values[0]
            else:
                languages.append(None)
    return languages, scores


@dataclass
class LanguagePredictions:
    """Per text: the top language and its probability, and every other language scoring at or
    above the floor (flat: `others_offsets[i]:others_offsets[i + 1]` are text i's)."""

    languages: list[str | None]
    scores: np.ndarray  # float64, NaN where the model predicts nothing
    others_offsets: np.ndarray  # int32, len(texts) + 1
    others_languages: list[str]
    others_scores: np.ndarray  # float64


def predict_language_scores(model: Any, texts: Sequence[str], batch_size: int = 1024,
                            floor: float = 0.5) -> LanguagePredictions:
    """The top language and its probability (as `predict_languages`), plus every other language
    whose probability is at least `floor`: enough to decide datatrove's `any(score > t)` over
    any wanted languages for every t >= floor. One predict per batch (k=-1 with fastText's own
    threshold, which costs what k=1 does); the rare texts with no label at the floor are
    predicted again with k=1 for their top label."""
    n = len(texts)
    languages: list[str | None] = [None] * n
    scores = np.full(n, np.nan)
    counts = np.zeros(n, np.int32)
    other_languages: list[str] = []
    other_scores: list[float] = []
    below: list[int] = []
    cut = len(LABEL_PREFIX)
    for start in range(0, n, batch_size):
        labels, probs = model.predict([clean_text(t) for t in texts[start:start + batch_size]],
                                      k=-1, threshold=floor)
        for row, (names, values) in enumerate(zip(labels, probs, strict=True), start):
            if not len(names):
                below.append(row)
                continue
            languages[row] = names[0][cut:]
            scores[row] = values[0]
            if len(names) > 1:
                counts[row] = len(names) - 1
                other_languages += [name[cut:] for name in names[1:]]
                other_scores += values[1:].tolist()
    if below:
        top, top_scores = predict_languages(model, [texts[row] for row in below], batch_size)
        for row, language, score in zip(below, top, top_scores, strict=True):
            languages[row], scores[row] = language, score
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return LanguagePredictions(languages, scores, offsets, other_languages,
                               np.asarray(other_scores, np.float64))
