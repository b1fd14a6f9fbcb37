"""Gopher's quality and repetition measurements (Rae et al. 2021, §A.1.1 and Table A1).

Each function measures a batch of documents and returns one float array per measurement; the
rules (`siftline.stages.gopher_quality`, `gopher_repetition`) compare them with thresholds at
selection time, so new thresholds need no second pass over the text. The definitions follow
datatrove's `GopherQualityFilter` and `GopherRepetitionFilter` (words from the English word
splitter, shares of the document's characters), so decisions agree with datatrove's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import regex

from siftline.quality import words

# A token made only of these is a symbol, not a word: punctuation, control characters, math and
# modifier symbols, and the ASCII symbols ($ + < = > ^ ` | ~).
_SYMBOL_TOKEN = regex.compile(r"[\p{P}\p{Cc}\p{Sm}\p{Sk}$]+")
_LETTER = regex.compile(r"\p{L}")
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAKS = re.compile(r"\n+")
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")

QUALITY_MEASURES = ("words", "mean_word_length", "hash_ratio", "ellipsis_ratio",
                    "bullet_lines_ratio", "ellipsis_lines_ratio", "alpha_words_ratio",
                    "stop_words")


def _share(count: int, total: int) -> float:
    return count / total if total else math.nan


def quality_row(text: str, stop_words: frozenset[str]) -> tuple[float, ...]:
    """One document's measurements, in the order of `QUALITY_MEASURES`."""
    tokens = words.split_words(text)
    n_words = len(tokens)
    lengths = [len(w) for w in tokens if not _SYMBOL_TOKEN.fullmatch(w)]
    lines = text.splitlines()
    return (
        len(lengths),
        _share(sum(lengths), len(lengths)),
        _share(text.count("#"), n_words),
        _share(text.count("...") + text.count("…"), n_words),
        _share(sum(line.lstrip().startswith(_BULLETS) for line in lines), len(lines)),
        _share(sum(line.rstrip().endswith(_ELLIPSES) for line in lines), len(lines)),
        _share(sum(1 for w in tokens if _LETTER.search(w)), n_words),
        len(stop_words.intersection(tokens)),
    )


def measure_quality(texts: Iterable[str], stop_words: Sequence[str]) -> dict[str, np.ndarray]:
    stops = frozenset(stop_words)
    rows = np.array([quality_row(text, stops) for text in texts], np.float64)
    rows = rows.reshape(-1, len(QUALITY_MEASURES))
    return {name: rows[:, i] for i, name in enumerate(QUALITY_MEASURES)}


def duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(repeated items, their characters): every occurrence after an item's first."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def top_ngram_chars(words: Sequence[str], n: int) -> int:
    """Characters covered by the most frequent n-gram (joined by spaces) times its count; among
    equally frequent n-grams, the one seen first."""
    counts: dict[str, int] = {}
    for i in range(len(words) - n + 1):
        gram = " ".join(words[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    if not counts:
        return 0
    best = max(counts.values())
    gram = next(g for g, c in counts.items() if c == best)
    return len(gram) * best


def repeated_ngram_chars(words: Sequence[str], n: int) -> int:
    """Characters of n-grams (joined without spaces) that repeat an earlier one, scanning left
    to right and jumping past each repeat, so overlapping repeats are not counted twice."""
    seen: set[str] = set()
    chars = i = 0
    while i <= len(words) - n:
        gram = "".join(words[i:i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def repetition_measures(top_ns: Sequence[int], dup_ns: Sequence[int]) -> tuple[str, ...]:
    return ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
            *(f"top_{n}_gram" for n in top_ns), *(f"dup_{n}_gram" for n in dup_ns))


def repetition_row(text: str, top_ns: Sequence[int], dup_ns: Sequence[int]
                   ) -> tuple[float, ...]:
    """One document's measurements, in the order of `repetition_measures`."""
    size = len(text)
    paragraphs = _PARAGRAPH_BREAK.split(text.strip())
    para_dups, para_chars = duplicates(paragraphs)
    lines = _LINE_BREAKS.split(text)
    line_dups, line_chars = duplicates(lines)
    tokens = words.split_words(text)
    return (
        _share(para_dups, len(paragraphs)), _share(para_chars, size),
        _share(line_dups, len(lines)), _share(line_chars, size),
        *(_share(top_ngram_chars(tokens, n), size) for n in top_ns),
        *(_share(repeated_ngram_chars(tokens, n), size) for n in dup_ns),
    )


def measure_repetition(texts: Iterable[str], top_ns: Sequence[int],
                       dup_ns: Sequence[int]) -> dict[str, np.ndarray]:
    names = repetition_measures(top_ns, dup_ns)
    rows = np.array([repetition_row(text, top_ns, dup_ns) for text in texts], np.float64)
    rows = rows.reshape(-1, len(names))
    return {name: rows[:, i] for i, name in enumerate(names)}
