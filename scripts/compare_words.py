"""siftline's word and sentence splitter against datatrove's English one (spaCy): agreement, speed.

For each corpus (the web samples under /work/shared/data/web/*.jsonl when present, and the demo
corpus of stdlib code and docs) it prints how often the token lists are identical, how far word
counts drift, how often sentence counts agree (per document, and per line as the C4 filter counts
them), the tokens that differ most, and documents per second for both splitters (median of runs;
ours both with a cold chunk cache and a warm one).

    python scripts/compare_words.py [--runs 3] [--limit 2000] [--show 3]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable

import zstandard

from siftline.demo.corpus import build_demo_corpus, demo_corpus_path
from siftline.quality import words

WEB = pathlib.Path("/work/shared/data/web")
DEMO_BYTES = 2_000_000


def web_texts() -> list[str]:
    """Texts of the shared web samples; empty when they are not on this machine."""
    texts = []
    for path in sorted(WEB.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def demo_texts(max_bytes: int = DEMO_BYTES) -> list[str]:
    """Texts of the demo corpus (stdlib code, tests and docstrings), built once and cached."""
    shards = build_demo_corpus(demo_corpus_path(max_bytes), max_bytes=max_bytes)
    texts = []
    for shard in shards:
        data = zstandard.ZstdDecompressor().decompress(shard.read_bytes()).decode("utf-8")
        texts += [json.loads(line)["text"] for line in data.splitlines()]
    return texts


def line_sentences(text: str, count: Callable[[str], int]) -> list[int]:
    """Sentence counts of the stripped non-empty lines, as C4's filter asks for them."""
    return [count(line) for line in map(str.strip, text.splitlines()) if line]


def agreement(texts: list[str], show: int) -> dict[str, object]:
    """Document-level agreement figures and the most frequent token differences."""
    from datatrove.utils.text import split_into_sentences, split_into_words

    same = near = sent_same = 0
    lines = lines_same = ref_words = diff_words = 0
    missing: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    examples = []
    for text in texts:
        ref, ours = split_into_words(text, "en"), words.split_words(text)
        same += ref == ours
        near += abs(len(ref) - len(ours)) <= 0.01 * len(ref)
        ref_words += len(ref)
        diff_words += abs(len(ref) - len(ours))
        if ref != ours:
            r, o = Counter(ref), Counter(ours)
            missing.update(r - o)
            extra.update(o - r)
            if len(examples) < show:
                examples.append(first_difference(ref, ours))
        sent_same += len(split_into_sentences(text, "en")) == words.count_sentences(text)
        ref_lines = line_sentences(text, lambda s: len(split_into_sentences(s, "en")))
        our_lines = line_sentences(text, words.count_sentences)
        lines += len(ref_lines)
        lines_same += sum(a == b for a, b in zip(ref_lines, our_lines, strict=True))
    n = max(len(texts), 1)
    return {
        "docs": len(texts), "identical tokens": same / n, "word count within 1%": near / n,
        "word count |diff| / words": diff_words / max(ref_words, 1),
        "sentence count identical (doc)": sent_same / n,
        "sentence count identical (line)": lines_same / max(lines, 1), "lines": lines,
        "spaCy-only tokens": missing.most_common(12), "ours-only tokens": extra.most_common(12),
        "examples": examples,
    }


def first_difference(ref: list[str], ours: list[str], width: int = 4) -> str:
    """The tokens around the first place the two token lists part."""
    pairs = enumerate(zip(ref, ours, strict=False))
    i = next((k for k, (a, b) in pairs if a != b), min(len(ref), len(ours)))
    lo = max(i - width, 0)
    return f"spaCy {ref[lo:i + width]}\n      ours  {ours[lo:i + width]}"


def rate(fn: Callable[[str], object], texts: list[str], runs: int,
         before: Callable[[], None] = lambda: None) -> float:
    """Documents per second, the median over runs."""
    times = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        for text in texts:
            fn(text)
        times.append(time.perf_counter() - start)
    return len(texts) / statistics.median(times)


def speed(texts: list[str], runs: int) -> dict[str, float]:
    """Docs/s of datatrove's split_into_words and of ours, cold and warm chunk cache."""
    from datatrove.utils.text import split_into_words

    # split_into_parts has an lru_cache(5): a text seen in the previous run would be free.
    ref = rate(lambda t: split_into_words(t + " ", "en"), texts, runs)
    words.split_words(texts[0])
    cold = rate(words.split_words, texts, runs, before=words._CACHE.clear)
    warm = rate(words.split_words, texts, runs)
    sents = rate(words.count_sentences, texts, runs)
    return {"datatrove split_into_words": ref, "ours, cold cache": cold, "ours, warm cache": warm,
            "ours count_sentences (warm)": sents, "speed-up (cold)": cold / ref,
            "speed-up (warm)": warm / ref}


def report(name: str, texts: list[str], args: argparse.Namespace) -> None:
    """Print one corpus' figures."""
    texts = texts[:args.limit]
    kb = sum(len(t.encode()) for t in texts) / max(len(texts), 1) / 1024
    print(f"\n== {name}: {len(texts)} docs, {kb:.1f} KB mean")
    for key, value in agreement(texts, args.show).items():
        if key == "examples":
            shown = "\n  ".join(value) or "(none)"  # type: ignore[arg-type]
            print(f"first differences:\n  {shown}")
        else:
            print(f"{key:34s} {value:.4f}" if isinstance(value, float) else f"{key:34s} {value}")
    for key, value in speed(texts, args.runs).items():
        print(f"{key:34s} {value:,.1f}" + ("x" if key.startswith("speed") else " docs/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=2000, help="documents per corpus at most")
    parser.add_argument("--show", type=int, default=3, help="differing documents to show")
    args = parser.parse_args()
    try:
        import datatrove  # noqa: F401
        import spacy  # noqa: F401
    except ImportError:
        sys.exit("needs datatrove and spacy (pip install -e '.[test]')")
    web = web_texts()
    if web:
        report(f"web ({WEB})", web, args)
    else:
        print(f"(no web samples under {WEB})")
    report("demo corpus (stdlib code, tests, docs)", demo_texts(), args)


if __name__ == "__main__":
    main()
