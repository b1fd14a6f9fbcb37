"""Document scoring throughput: siftline's scorer vs a plain scoring loop, same model, same docs.

Both score every token of every document once with the same windows (a document longer than the
context is cut into windows that advance by `stride`), so their per-document NLLs agree (checked).
They differ in how: the plain loop takes documents in input order in batches of `--plain-batch`,
pads each batch to its longest window, materialises `[B, T, V]` logits and calls
`F.cross_entropy(reduction="none")`; the scorer sorts windows by length, packs them by padded
token count and passes only scored positions to `siftline.kernels.token_nll`. Documents are a seeded
sample of the standard-library demo corpus (long code chunks) or of a JSON Lines file such as
../shared/data/web/dclm_labeled.jsonl (web pages of every length); the model is randomly
initialised (speed does not depend on the weights) with a BPE tokenizer trained on the sample.
Runs alternate and each method's rate is the median; tokens/s counts scored tokens.

    python scripts/bench_lm_scoring.py --docs 100 --preset demo --repeats 3
    python scripts/bench_lm_scoring.py --docs 300 --preset demo --repeats 3 \
        --source ../shared/data/web/dclm_labeled.jsonl
    python scripts/bench_lm_scoring.py --docs 2000 --preset 150m --device cuda   # bf16, Triton

On a GPU both methods run the model in bf16 (the scorer's default there); the plain loop's
logits are bf16 too, as a user's would be.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import sysconfig
import time

import numpy as np
import torch
import torch.nn.functional as F

from siftline.demo.corpus import collect_records
from siftline.lm.checkpoint import SiftlineLM
from siftline.lm.config import ModelConfig, ScoreConfig
from siftline.lm.model import CausalLM
from siftline.lm.scorer import IGNORE, DocumentScorer, plan_windows
from siftline.lm.tokenizer import train_tokenizer


def sample_texts(n_docs: int, seed: int, source: str = "demo") -> list[str]:
    """A seeded sample: the standard-library demo corpus, or a JSON Lines file's `text`."""
    if source == "demo":
        records = collect_records(pathlib.Path(sysconfig.get_paths()["stdlib"]))
    else:
        with open(source, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    random.Random(seed).shuffle(records)
    return [r["text"] for r in records[:n_docs]]


@torch.inference_mode()
def plain_loop(lm: SiftlineLM, texts: list[str], stride: int, batch_docs: int) -> np.ndarray:
    """What a user writes first: input order, pad to the batch's longest row, full logits."""
    bos = lm.tokenizer.bos_id
    seqs = [[bos, *ids] for ids in lm.tokenizer.encode_batch(texts)]
    totals = np.zeros(len(texts))
    for start in range(0, len(texts), batch_docs):
        rows = [(doc, w) for doc in range(start, min(start + batch_docs, len(texts)))
                for w in plan_windows(len(seqs[doc]), lm.context_length, stride, doc)]
        if not rows:
            continue
        width = max(w.end - w.begin for _, w in rows)
        inputs = torch.zeros(len(rows), width, dtype=torch.long)
        targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, (doc, w) in enumerate(rows):
            seq = seqs[doc]
            inputs[i, : w.end - w.begin] = torch.tensor(seq[w.begin:w.end])
            skip = w.first - w.begin - 1
            targets[i, skip: w.end - w.begin] = torch.tensor(seq[w.first:w.end + 1])
        logits = lm.model.logits(lm.model(inputs.to(lm.device)))
        nll = F.cross_entropy(logits.flatten(0, 1), targets.to(lm.device).flatten(),
                              ignore_index=IGNORE, reduction="none").view(len(rows), width).cpu()
        for i, (doc, _) in enumerate(rows):
            totals[doc] += float(nll[i].double().sum())
    return totals


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, bf16"
    return f"{torch.get_num_threads()} threads, fp32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--plain-batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: bf16 model, the scorer's Triton kernel")
    parser.add_argument("--source", default="demo",
                        help="demo (standard-library corpus) or a JSON Lines file with `text`")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    texts = sample_texts(args.docs, args.seed, args.source)
    config = ModelConfig(preset=args.preset)
    tokenizer = train_tokenizer(texts, config.vocab_size)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    lm = SiftlineLM(CausalLM(config).to(device, dtype).eval(), tokenizer, device)
    score_config = ScoreConfig(batch_tokens=args.batch_tokens, device=args.device,
                               backend="auto" if args.device == "cuda" else "torch")
    scorer = DocumentScorer(lm, score_config)
    scorer.score(texts[:2])  # warm-up (and Triton's autotune on a GPU)
    plain_loop(lm, texts[:2], scorer.stride, args.plain_batch)
    methods = {
        "plain loop (input order, full logits)":
            lambda: plain_loop(lm, texts, scorer.stride, args.plain_batch),
        "siftline scorer (sorted, packed, fused loss)": lambda: scorer.score(texts).nll_sum,
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    results: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    n_tokens = int(scorer.score(texts).n_tokens.sum())
    plain, ours = results.values()
    worst = float(np.max(np.abs(plain - ours) / np.maximum(np.abs(plain), 1e-9)))
    chars = sum(len(t) for t in texts)
    print(f"{args.source}: {len(texts)} docs, {chars / 1e6:.2f} M chars, {n_tokens} tokens; model "
          f"{args.preset} ({lm.model.num_parameters() / 1e6:.1f} M params, vocab "
          f"{config.vocab_size}, ctx {config.context_length}); {describe(device)}; "
          f"max relative NLL difference {worst:.1e}\n")
    base = statistics.median(times[next(iter(methods))])
    print("| method | median s | tokens/s | speed-up |")
    print("|---|---:|---:|---:|")
    for name in methods:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.2f} | {n_tokens / median:,.0f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
