"""C4's rules as document measurements (Raffel et al. 2020, §2.2; datatrove's C4QualityFilter).

C4 removes lines (no terminal punctuation, fewer than three words, a word over 1,000
characters, "javascript", cookie and policy notices) and drops a page that keeps fewer than five
sentences or says "lorem ipsum" or holds a curly bracket in a line it would otherwise keep.
siftline never rewrites text, so C4 becomes a judgement of the whole document: what the line
removal would leave (its sentences, its share of the characters) and whether a kept line trips
a page rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from siftline.quality import words

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
           "use cookies")

MEASURES = ("sentences", "lorem_ipsum", "curly_bracket", "kept_share")


@dataclass(frozen=True)
class LineRules:
    """How C4 judges a line: the measurement parameters of `C4QualityConfig`."""

    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_words_per_line: int = 3
    max_word_length: int | None = 1000
    filter_javascript: bool = True
    filter_policy: bool = True


def row(text: str, rules: LineRules) -> tuple[float, ...]:
    """One document's measurements, in the order of `MEASURES`. The page rules look at the
    lines that pass the length and punctuation rules, in C4's order: "lorem ipsum" before the
    javascript rule, the curly bracket after it."""
    sentences = kept_chars = all_chars = 0
    lorem = curly = False
    for raw in text.splitlines():
        line = raw.strip()
        all_chars += len(line)
        line_words = line.split()
        if rules.max_word_length is not None and any(len(w) > rules.max_word_length
                                                     for w in line_words):
            continue
        if rules.remove_citations:
            line = _CITATION.sub("", line)
        if rules.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION)
                                               or line.endswith("...")):
            continue
        if len(line_words) < rules.min_words_per_line:
            continue
        lower = line.lower()
        lorem = lorem or "lorem ipsum" in lower
        if rules.filter_javascript and "javascript" in lower:
            continue
        curly = curly or "{" in line
        if rules.filter_policy and any(p in lower for p in _POLICY):
            continue
        sentences += words.count_sentences(line)
        kept_chars += len(line)
    return (sentences, float(lorem), float(curly),
            kept_chars / all_chars if all_chars else 0.0)


def measure(texts: Iterable[str], rules: LineRules) -> dict[str, np.ndarray]:
    rows = np.array([row(text, rules) for text in texts], np.float64)
    rows = rows.reshape(-1, len(MEASURES))
    return {name: rows[:, i] for i, name in enumerate(MEASURES)}
