"""The `classifier` stage beside a bare fastText predict loop: documents/s on the same texts.

A quality classifier is trained on the spot (fastText, bigrams, 100 dimensions, the human
labels of ../shared/data/web/dclm_labeled.jsonl; without it, the demo corpus's `docs` against
its `code`), then three ways score the same documents, interleaved, pinned to one CPU:
  * the stage's call on a document table (batched predict, k=-1, the label's probability, the
    Arrow column built): what a worker pays per batch;
  * the bare loop `model.predict(text.replace("\\n", " "), k=-1)` per text;
  * the same loop with k=1.
Each figure is the median of --repeats runs.

    python scripts/bench_classifier.py --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from siftline.demo.corpus import build_demo_corpus
from siftline.documents import add_local_reasons, make_table
from siftline.preselect.classifier import load_classifier
from siftline.preselect.config import FastTextConfig
from siftline.preselect.fasttext_train import Example, train_fasttext
from siftline.stages.classifier import ClassifierScore

WEB = Path(__file__).resolve().parents[2] / "shared" / "data" / "web" / "dclm_labeled.jsonl"


def labelled() -> tuple[str, list[Example]]:
    if WEB.is_file():
        rows = [json.loads(line) for line in WEB.read_text(encoding="utf-8").splitlines()]
        return str(WEB), [Example(f"w{i}", int(r["label"]), r["text"])
                          for i, r in enumerate(rows)]
    import zstandard

    folder = Path(tempfile.mkdtemp()) / "demo"
    examples = []
    for shard in build_demo_corpus(folder, max_bytes=4_000_000):
        with zstandard.ZstdDecompressor().stream_reader(shard.open("rb")) as handle:
            for line in handle.read().decode().splitlines():
                r = json.loads(line)
                if r["domain"] in ("docs", "code"):
                    examples.append(Example(r["id"], int(r["domain"] == "docs"), r["text"]))
    return "demo corpus (docs vs code)", examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    where, examples = labelled()
    path = Path(tempfile.mkdtemp()) / "quality.bin"
    train_fasttext(examples, FastTextConfig(bucket=200_000), path)
    texts = [ex.text for ex in examples]
    stage = ClassifierScore(str(path), "__label__1")
    model = load_classifier(str(path), "__label__1")
    table = add_local_reasons(make_table([ex.id for ex in examples], texts,
                                         ["d"] * len(texts), ["s"] * len(texts)), 1 << 30)

    def loop(k: int) -> Callable[[], object]:
        return lambda: [model.predict(t.replace("\n", " "), k=k) for t in texts]

    methods: dict[str, Callable[[], object]] = {
        "classifier stage (table in, column out)": lambda: stage(table),
        "bare predict loop, k=-1": loop(-1),
        "bare predict loop, k=1": loop(1),
    }
    for run in methods.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    rate = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
    base = rate["bare predict loop, k=-1"]
    print(f"{len(texts)} documents from {where}, one CPU, median of {args.repeats} runs\n")
    print("| method | docs/s | ÷ bare loop (k=-1) |\n|---|---:|---:|")
    for name, value in rate.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f}× |")


if __name__ == "__main__":
    main()
