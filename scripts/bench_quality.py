"""The cleaning stages beside datatrove's filters: speed on one core, and decision agreement.

The same documents (the web sample in ../shared/data/web, else Python's pydoc topics) go
through siftline's rule stages and language ID (the stage callable on an Arrow batch plus the
selection rules) and through datatrove's filters of the same names and thresholds (English
words split by spaCy, as datatrove does; LanguageFilter given the same lid.176.ftz), and through
a bare `model.predict` loop for language ID. Methods run interleaved, --repeats times, pinned
to one CPU; a rate is the median run's documents per second. Agreement: the share of documents
on which both keep or both drop.

    python scripts/bench_quality.py --repeats 3 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

WEB = Path(__file__).resolve().parents[2] / "shared" / "data" / "web"
RULE_STAGES = ("gopher_quality", "gopher_repetition", "fineweb_quality", "c4_quality")
ALL = (*RULE_STAGES, "language")


def load_texts() -> tuple[str, list[str]]:
    if WEB.is_dir():
        texts = [json.loads(line)["text"] for path in sorted(WEB.glob("*.jsonl"))
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return f"{WEB} ({len(texts)} web pages)", texts
    from pydoc_data.topics import topics

    return "pydoc topics", [topics[k] for k in sorted(topics)]


def siftline_stage(name: str) -> Callable[[list[str]], list[bool]]:
    from siftline.config import load_config
    from siftline.selection.rules import apply_selection
    from siftline.stages.registry import REGISTRY

    config = load_config({"stages": {name: {"enabled": True}}})
    spec = REGISTRY[name]
    stage = spec.build(config)

    def keeps(texts: list[str]) -> list[bool]:
        table = pa.table({"text": texts, "drop_reason": pa.nulls(len(texts), pa.string())})
        judged = apply_selection(stage(table), [spec], config=config)
        return [reason is None for reason in judged.column("drop_reason").to_pylist()]

    return keeps


def datatrove_filter(name: str) -> Callable[[list[str]], list[bool]]:
    from datatrove.data import Document
    from datatrove.pipeline import filters

    if name == "language":
        import fasttext

        from siftline.langid.model import BUNDLED_MODEL

        flt = filters.LanguageFilter(languages=["en"], language_threshold=0.65)
        flt.model._model = fasttext.load_model(str(BUNDLED_MODEL))
    else:
        flt = {"gopher_quality": filters.GopherQualityFilter,
               "gopher_repetition": filters.GopherRepetitionFilter,
               "fineweb_quality": filters.FineWebQualityFilter,
               "c4_quality": filters.C4QualityFilter}[name]()

    def keeps(texts: list[str]) -> list[bool]:
        out = []
        for i, text in enumerate(texts):
            result = flt.filter(Document(text=text, id=str(i)))
            out.append(result[0] if isinstance(result, tuple) else bool(result))
        return out

    return keeps


def bare_predict() -> Callable[[list[str]], list[bool]]:
    import fasttext

    from siftline.langid.model import BUNDLED_MODEL

    model = fasttext.load_model(str(BUNDLED_MODEL))

    def keeps(texts: list[str]) -> list[bool]:
        out = []
        for text in texts:
            labels, probs = model.predict(text.replace("\n", " "), k=1)
            out.append(labels[0] == "__label__en" and float(probs[0]) > 0.65)
        return out

    return keeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    where, texts = load_texts()
    methods: dict[tuple[str, str], Callable[[list[str]], list[bool]]] = {}
    for name in ALL:
        methods[(name, "datatrove")] = datatrove_filter(name)
        methods[(name, "siftline")] = siftline_stage(name)
    methods[("language", "bare predict")] = bare_predict()
    for keeps in methods.values():  # warm-up: spaCy, the models, first-call costs
        keeps(texts[:5])
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in methods}
    decisions: dict[tuple[str, str], list[bool]] = {}
    for _ in range(args.repeats):
        for key, keeps in methods.items():
            start = time.perf_counter()
            decisions[key] = keeps(texts)
            seconds[key].append(time.perf_counter() - start)
    rate = {key: len(texts) / statistics.median(s) for key, s in seconds.items()}
    rows = []
    for name in ALL:
        dt, ours = decisions[(name, "datatrove")], decisions[(name, "siftline")]
        agree = sum(a == b for a, b in zip(dt, ours, strict=True)) / len(texts)
        rows.append((name, rate[(name, "datatrove")], rate[(name, "siftline")],
                     rate[(name, "siftline")] / rate[(name, "datatrove")], agree,
                     sum(ours), sum(dt)))

    def total(method: str) -> float:
        return len(texts) / sum(statistics.median(seconds[(n, method)]) for n in ALL)

    rows.append(("all five", total("datatrove"), total("siftline"),
                 total("siftline") / total("datatrove"), float("nan"), 0, 0))
    print(f"{len(texts)} documents from {where}, one CPU, median of {args.repeats} runs\n")
    head = ("stage", "datatrove docs/s", "siftline docs/s", "siftline / datatrove",
            "same decision", "kept (siftline)", "kept (datatrove)")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for name, d, s, ratio, agree, k_s, k_d in rows:
        cells = (name, f"{d:,.0f}", f"{s:,.0f}", f"{ratio:.1f}×",
                 "" if agree != agree else f"{agree:.1%}",
                 str(k_s) if name != "all five" else "", str(k_d) if name != "all five" else "")
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(cells))
    bare = rate[("language", "bare predict")]
    print(f"\nlanguage ID: siftline stage {rate[('language', 'siftline')]:,.0f} docs/s, bare "
          f"model.predict loop {bare:,.0f} docs/s: "
          f"{rate[('language', 'siftline')] / bare:.2f}× the bare loop")


if __name__ == "__main__":
    main()
