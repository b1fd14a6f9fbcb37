"""CoLoR-Filter scoring throughput: documents/s and tokens/s of the `color_filter` stage.

Two layouts of the two auxiliary models, on the same documents, one thread each:
  * one worker holds both models (siftline's choice): the batch is tokenized once and both
    models score it;
  * one pool per model: each model's worker tokenizes and scores the batch on its own (the
    time of the two workers added: the same CPU work spread over two pools).
Then the whole read+score phase of a job on the embedded Ray with `--workers` workers.
Models are the demo's (`tiny` preset) with random weights and a BPE tokenizer trained on the
sample (speed does not depend on the weights); documents are a seeded sample of the
standard-library demo corpus. Methods alternate; each figure is the median of `--repeats`.

    python scripts/bench_color_scoring.py --docs 300 --repeats 3 --workers 2
    python scripts/bench_color_scoring.py --docs 5000 --preset 150m --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_lm_scoring import sample_texts  # noqa: E402

import siftline  # noqa: E402
from siftline.config import ColorFilterConfig  # noqa: E402
from siftline.documents import add_local_reasons, make_table  # noqa: E402
from siftline.lm.checkpoint import save_model  # noqa: E402
from siftline.lm.config import ModelConfig, ScoreConfig  # noqa: E402
from siftline.lm.model import CausalLM  # noqa: E402
from siftline.lm.scorer import DocumentScorer  # noqa: E402
from siftline.lm.tokenizer import train_tokenizer  # noqa: E402
from siftline.stages.color_filter import ColorScore  # noqa: E402


def build_models(texts: list[str], folder: Path, preset: str) -> tuple[str, str]:
    config = ModelConfig(preset=preset)
    tokenizer = train_tokenizer(texts, config.vocab_size)
    dirs = []
    for seed, name in ((0, "prior"), (1, "conditional")):
        torch.manual_seed(seed)
        dirs.append(str(save_model(folder / name, CausalLM(config), tokenizer)))
    return dirs[0], dirs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (GPU actors, one each)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gpus = 1 if args.device == "cuda" else 0
    texts = sample_texts(args.docs, args.seed)
    work = Path(tempfile.mkdtemp(prefix="siftline-color-bench-"))
    try:
        prior_dir, cond_dir = build_models(texts, work, args.preset)
        score = ScoreConfig(device=args.device, threads=1)
        both = ColorScore(ColorFilterConfig(score=score), prior_dir, cond_dir)
        prior = DocumentScorer.from_folder(prior_dir, score)
        cond = DocumentScorer.from_folder(cond_dir, score)
        table = add_local_reasons(make_table([f"d{i}" for i in range(len(texts))], texts,
                                             ["x"] * len(texts), ["s"] * len(texts)), 10**7)
        both(table.slice(0, 2))  # warm-up
        tokens = int(sum(len(s) - 1 for s in prior.sequences(texts)))
        methods = {
            "one worker, both models": lambda: both(table),
            "one pool per model (sum of both)": lambda: (prior.score(texts), cond.score(texts)),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, fn in methods.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        corpus = work / "corpus.jsonl"
        corpus.write_text("".join(json.dumps({"id": f"d{i:05d}", "text": t}) + "\n"
                                  for i, t in enumerate(texts)), encoding="utf-8")
        job = {"input": {"paths": [str(corpus)], "split_bytes": max(1, corpus.stat().st_size
                                                                    // (2 * args.workers))},
               "output": {"path": str(work / "out")},
               "executor": {"kind": "ray", "num_workers": args.workers},
               "stages": {"exact_dedupe": {"enabled": False}, "color_filter": {
                   "enabled": True, "prior": prior_dir, "conditional": cond_dir,
                   "score": {"device": args.device, "threads": 1},
                   "gpus_per_worker": gpus, "plot": False}}}
        ray_times = []
        for _ in range(args.repeats):
            shutil.rmtree(work / "out", ignore_errors=True)
            ray_times.append(siftline.run(job).stats["wall_time_s"]["read+score"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(texts)} docs, {sum(map(len, texts)) / 1e6:.2f} M chars, {tokens} tokens per "
          f"model; preset {args.preset}; device {args.device}; one torch thread per worker\n")
    print("| layout | median s | docs/s | tokens/s (both models) |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} (1 core) | {median:.2f} | {len(texts) / median:,.1f} | "
              f"{2 * tokens / median:,.0f} |")
    median = statistics.median(ray_times)
    print(f"| job read+score phase, Ray, {args.workers} workers | {median:.2f} | "
          f"{len(texts) / median:,.1f} | {2 * tokens / median:,.0f} |")


if __name__ == "__main__":
    main()
