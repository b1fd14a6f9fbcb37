"""MinHash signature throughput: siftline vs datasketch vs rensa, one process on one core.

Every method turns the same generated documents (~2 KB of English-like text each, a list of
str) into 128-permutation signatures of word 5-gram shingles, shingling included. Each run is
a fresh subprocess pinned to one CPU with every thread pool at one thread; methods run
interleaved, --repeats times each, and a method's rate is the median run. Warm-up (numba
compile or cache load, imports) is excluded and numba's compile time is reported separately.
Rates come from wall time and from the child's CPU time: on a busy machine the CPU-time rate is
the steadier of the two.

    python scripts/bench_minhash.py --docs 20000 --repeats 3 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20240611
DOC_BYTES = 2000
NUM_PERM = 128
THREAD_ENV = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "RAYON_NUM_THREADS")
METHODS = {
    "siftline": "siftline minhash_signatures (list[str])",
    "siftline_arrow": "siftline minhash_signatures (pyarrow array)",
    "datasketch_batch": "datasketch update_batch, shared permutations, xxh32",
    "datasketch_bulk": "datasketch MinHash.bulk, xxh32",
    "datasketch_sha1": "datasketch update_batch, shared permutations, sha1 (default)",
    "rensa": "rensa RMinHash.update per document",
    "rensa_matrix": "rensa digest_matrix_from_token_sets (batch API)",
}
DATASKETCH_FAST = ("datasketch_batch", "datasketch_bulk")
COMMON = ("the of and to a in is that for it as was with be by on not he this are or his from at"
          " which but have an they you were her she there one all we their can has more would"
          " will if its no been when who so time people year way day man thing woman life child"
          " world school state family student group country problem hand part place case week")
RARE = ["café", "naïve", "über", "Zürich", "señor", "façade", "—", "“quoted”", "10", "2024", "3.5"]
SYLLABLES = "ka lo ri men tas ver on el ust pra di ne sho bar qui ter an ex ol mi pe dra in cor"


def generate(n_docs: int) -> list[str]:
    """Zipf-distributed words (common English first, then pseudo-words), capitalised sentences,
    punctuation, and a sprinkling of non-ASCII words, ~DOC_BYTES per document."""
    rng = np.random.default_rng(SEED)
    words = COMMON.split()
    seen = set(words)
    syllables = SYLLABLES.split()
    while len(words) < 20_000:
        word = "".join(rng.choice(syllables, rng.integers(1, 5)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    vocab = np.array(words + RARE, dtype=object)
    weights = 1.0 / np.arange(1, len(words) + 1) ** 1.1
    rare = np.full(len(RARE), 0.005 / len(RARE))  # ~70% of documents get a non-ASCII word
    weights = np.concatenate([weights / weights.sum() * 0.995, rare])
    docs = []
    for _ in range(n_docs):
        picks = vocab[rng.choice(len(vocab), DOC_BYTES // 6, p=weights)]
        ends = rng.random(len(picks)) < 0.07
        parts, capital = [], True
        for word, end in zip(picks, ends, strict=True):
            parts.append((word.capitalize() if capital else word) + (". " if end else " "))
            capital = bool(end)
        docs.append("".join(parts).strip())
    return docs


# -- children: one method, one run -------------------------------------------------------------
def _shingle_lists(texts: list[str]) -> list[list[bytes]]:
    from siftline.dedupe import shingles

    return [shingles(t) for t in texts]


def _datasketch(texts: list[str], method: str) -> Any:
    import xxhash
    from datasketch import MinHash

    from siftline.dedupe import shingles

    if method == "datasketch_bulk":
        return MinHash.bulk(_shingle_lists(texts), num_perm=NUM_PERM, seed=1,
                            hashfunc=xxhash.xxh32_intdigest)
    hashfunc = None if method == "datasketch_sha1" else xxhash.xxh32_intdigest
    perms = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=hashfunc).permutations
    rows = []
    for text in texts:
        m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=hashfunc, permutations=perms,
                    scheme="affine32")
        m.update_batch(shingles(text))
        rows.append(m.hashvalues)
    return rows


def _rensa(texts: list[str], method: str) -> Any:
    from rensa import RMinHash

    from siftline.dedupe import shingles

    if method == "rensa_matrix":
        return RMinHash.digest_matrix_from_token_sets(_shingle_lists(texts), NUM_PERM, 1)
    rows = []
    for text in texts:
        m = RMinHash(NUM_PERM, 1)
        m.update(shingles(text))
        rows.append(m.digest())
    return rows


def _siftline(texts: Any, method: str) -> Any:
    from siftline.dedupe import minhash_signatures

    return minhash_signatures(texts, NUM_PERM, 1)


def child(method: str, data: Path, cpu: int) -> None:
    """Pin, load the documents, warm up on a few of them, then time the whole set."""
    os.sched_setaffinity(0, {cpu})
    import pyarrow as pa
    import pyarrow.feather as feather

    table = feather.read_table(data)
    texts: Any = table.column("text").to_pylist()
    if method == "siftline_arrow":
        texts = table.column("text").combine_chunks().cast(pa.large_string())
    run = _siftline if method.startswith("siftline") else (
        _datasketch if method.startswith("datasketch") else _rensa)
    start = time.perf_counter()
    if method.startswith("siftline"):
        from siftline.dedupe.minhash import warm_up

        warm_up()
    run(texts[:8], method)
    warm = time.perf_counter() - start
    wall, cpu_time = time.perf_counter(), time.process_time()
    run(texts, method)
    result = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu_time,
              "warmup": warm, "docs": len(texts)}
    print(json.dumps(result))


# -- parent ------------------------------------------------------------------------------------
def run_once(method: str, data: Path, cpu: int, cache_dir: Path) -> dict[str, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), **dict.fromkeys(THREAD_ENV, "1"))
    cmd = [sys.executable, __file__, "--child", method, "--data", str(data), "--cpu", str(cpu)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{method} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_identical(texts: list[str]) -> bool:
    """siftline rows == datasketch rows on a sample (the whole point of the scheme choice)."""
    import xxhash
    from datasketch import MinHash

    from siftline.dedupe import minhash_signatures, shingles

    ours = minhash_signatures(texts, NUM_PERM, 1)
    for text, row in zip(texts, ours, strict=True):
        m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=xxhash.xxh32_intdigest)
        m.update_batch(shingles(text))
        if not np.array_equal(m.hashvalues, row):
            return False
    return True


def report(runs: dict[str, list[dict[str, float]]], compile_s: float, cache_s: float,
           mean_bytes: float, identical: bool, markdown: bool) -> str:
    docs = runs["siftline"][0]["docs"]
    rate = {m: {k: statistics.median(docs / r[k] for r in rs) for k in ("wall", "cpu")}
            for m, rs in runs.items()}
    fastest = {k: max(rate[m][k] for m in DATASKETCH_FAST) for k in ("wall", "cpu")}
    head = ["method", "docs/s (wall)", "docs/s (CPU)", "x datasketch fastest (wall / CPU)"]
    rows = [[METHODS[m], f"{rate[m]['wall']:,.0f}", f"{rate[m]['cpu']:,.0f}",
             f"{rate[m]['wall'] / fastest['wall']:.1f} / {rate[m]['cpu'] / fastest['cpu']:.1f}"]
            for m in METHODS]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                 for r in [head, *rows]]
    sift = rate["siftline"]
    checks = [
        (f"siftline >= 5x datasketch fastest ({k})", sift[k] >= 5 * fastest[k]) for k in rate[
            "siftline"]
    ] + [(f"siftline >= rensa ({k})", sift[k] >= rate["rensa"][k]) for k in ("wall", "cpu")]
    lines += ["", f"{docs} documents, {mean_bytes:,.0f} bytes on average, num_perm={NUM_PERM},"
              f" word 5-grams, median of {len(runs['siftline'])} runs, one pinned core.",
              f"numba compile (cold cache): {compile_s:.1f} s; warm-up with the cache: "
              f"{cache_s:.2f} s (both excluded above).",
              f"siftline rows identical to datasketch's (sample of 200): {identical}"]
    lines += [f"goal {name}: {'PASS' if ok else 'FAIL'}" for name, ok in checks]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)),
                        help="core to pin every run to (default: the highest one allowed)")
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.cpu)
        return
    import pyarrow as pa
    import pyarrow.feather as feather

    texts = generate(args.docs)
    identical = check_identical(texts[:200])
    with tempfile.TemporaryDirectory(prefix="bench-minhash-") as tmp:
        data, cache = Path(tmp) / "docs.arrow", Path(tmp) / "numba-cache"
        feather.write_feather(pa.table({"text": pa.array(texts, pa.large_string())}), data)
        compile_s = run_once("siftline", data, args.cpu, cache)["warmup"]  # cold: compiles
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
        for i in range(args.repeats):  # interleaved, so drift hits every method alike
            for method in METHODS:
                runs[method].append(run_once(method, data, args.cpu, cache))
                print(f"repeat {i + 1}/{args.repeats} {method}: {runs[method][-1]['wall']:.2f}s"
                      f" wall, {runs[method][-1]['cpu']:.2f}s CPU", file=sys.stderr)
    cache_s = statistics.median(r["warmup"] for r in runs["siftline"])
    mean_bytes = sum(len(t.encode()) for t in texts) / len(texts)
    print(report(runs, compile_s, cache_s, mean_bytes, identical, args.markdown))


if __name__ == "__main__":
    main()
