"""FineWeb's quality measurements (Penedo et al. 2024, §3.3; datatrove's FineWebQualityFilter).

Over the non-blank lines: the share ending in sentence-final punctuation, the share of short
lines, the share of the document's characters in duplicated lines, and newlines per word (a
list, not prose). `siftline.stages.fineweb_quality` holds the thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import regex

from siftline.quality import words
from siftline.quality.gopher import duplicates

# Unicode's Sentence_Terminal property: . ! ? and their counterparts in other scripts.
_TERMINAL = regex.compile(r"\p{Sentence_Terminal}")

MEASURES = ("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "new_line_ratio")


def ends_sentence(line: str) -> bool:
    return bool(line) and _TERMINAL.fullmatch(line[-1]) is not None


def row(text: str, short_line_length: int) -> tuple[float, ...]:
    """One document's measurements, in the order of `MEASURES`; with no non-blank line, no
    line ends a sentence (the document fails `line_punct_thr`)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return (0.0, math.nan, math.nan, math.nan)
    n_words = len(words.split_words(text))
    body = len(text) - text.count("\n")
    return (
        sum(ends_sentence(line) for line in lines) / len(lines),
        sum(len(line) <= short_line_length for line in lines) / len(lines),
        duplicates(lines)[1] / body if body else math.nan,
        text.count("\n") / n_words if n_words else math.nan,
    )


def measure(texts: Iterable[str], short_line_length: int) -> dict[str, np.ndarray]:
    rows = np.array([row(text, short_line_length) for text in texts], np.float64)
    rows = rows.reshape(-1, len(MEASURES))
    return {name: rows[:, i] for i, name in enumerate(MEASURES)}
