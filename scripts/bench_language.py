"""Language-ID throughput: documents/s of the `language` stage beside a plain loop and datatrove.

Three ways over the same documents and the same model (the bundled lid.176.ftz, or --model):
  * the stage's call on a document table (batched predict with k=-1 down to the floor, the
    arrow columns built): what a worker pays per batch;
  * the plain loop a user writes first: `model.predict(text.replace("\\n", " "), k=1)` per text;
  * datatrove's LanguageFilter.filter per Document (its model swapped for the same file, so
    nothing downloads; it predicts k=-1 per text).
Corpora: /work/shared/data/web/*.jsonl when present (skipped otherwise) and a seeded sample of
the standard-library demo corpus. Methods alternate; each figure is the median of --repeats.

    python scripts/bench_language.py --docs 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import glob
import json
import pathlib
import random
import statistics
import sysconfig
import time
from collections.abc import Callable
from typing import Any

from siftline.config import load_config
from siftline.demo.corpus import collect_records
from siftline.documents import add_local_reasons, make_table
from siftline.langid.model import BUNDLED_MODEL, load_lid
from siftline.stages.language import LanguageID

WEB = "/work/shared/data/web/*.jsonl"


def web_texts(pattern: str) -> list[str]:
    texts = []
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    return texts


def demo_texts(n_docs: int, seed: int) -> list[str]:
    records = collect_records(pathlib.Path(sysconfig.get_paths()["stdlib"]))
    random.Random(seed).shuffle(records)
    return [r["text"] for r in records[:n_docs]]


def datatrove_filter(model_path: str) -> Callable[[list[str]], Any] | None:
    try:
        import fasttext
        from datatrove.data import Document
        from datatrove.pipeline.filters.language_filter import LanguageFilter
    except ImportError:
        return None
    lf = LanguageFilter(languages=["en"], language_threshold=0.65)
    lf.model._model = fasttext.load_model(model_path)

    def run(texts: list[str]) -> list[bool]:
        return [bool(lf.filter(Document(text=t, id=str(i)))) for i, t in enumerate(texts)]

    return run


def bench(texts: list[str], model_path: str, repeats: int) -> dict[str, tuple[float, float]]:
    """docs/s per method: (wall clock, this process's CPU time; steadier on a shared host)."""
    config = load_config({"stages": {"language": {
        "enabled": True, "model": None if model_path == str(BUNDLED_MODEL) else model_path}}})
    stage = LanguageID.build(config)
    model = load_lid(model_path)
    n = len(texts)
    table = add_local_reasons(make_table([str(i) for i in range(n)], texts, ["x"] * n,
                                         ["s"] * n), 1 << 40)

    def plain(texts: list[str]) -> list[Any]:
        return [model.predict(t.replace("\n", " "), k=1) for t in texts]

    methods: dict[str, Callable[[], Any]] = {
        "stage": lambda: stage(table),
        "plain predict loop (k=1)": lambda: plain(texts),
    }
    datatrove = datatrove_filter(model_path)
    if datatrove is not None:
        methods["datatrove LanguageFilter"] = lambda: datatrove(texts)
    wall: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    for fn in methods.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in methods.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (n / statistics.median(wall[name]), n / statistics.median(cpu[name]))
            for name in methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000, help="demo documents")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--web", default=WEB)
    args = parser.parse_args()
    corpora = {}
    web = web_texts(args.web)
    if web:
        corpora[f"web ({args.web})"] = web
    else:
        print(f"skipping {args.web}: no files")
    corpora["demo (stdlib)"] = demo_texts(args.docs, args.seed)
    for name, texts in corpora.items():
        chars = sum(map(len, texts)) / max(1, len(texts))
        rates = bench(texts, args.model, args.repeats)
        plain = rates["plain predict loop (k=1)"]
        print(f"\n{name}: {len(texts)} docs, {chars:.0f} chars/doc, median of {args.repeats}")
        print(f"{'method':<28} {'docs/s wall':>12} {'vs plain':>9} {'docs/s CPU':>11} "
              f"{'vs plain':>9}")
        for method, (rate, cpu_rate) in rates.items():
            print(f"{method:<28} {rate:>12.0f} {rate / plain[0]:>8.2f}x {cpu_rate:>11.0f} "
                  f"{cpu_rate / plain[1]:>8.2f}x")


if __name__ == "__main__":
    main()
