"""Throughput of read -> exact-dedupe -> write, one process on one core.

Compares siftline's end-to-end job (`siftline.run`, local executor, exact dedupe, zstd) with
pyarrow's own JSON read + Parquet write of the same files (the ceiling) and with datatrove's
JsonlReader -> ParquetWriter; siftline twice, with its C kernels (as installed where there is
a C compiler) and with their fallbacks, pyarrow's JSON reader and numba's kernels
(`SIFTLINE_KERNELS=numba`, as installed without one). Every run
is a fresh subprocess pinned to CPU 0 with one thread everywhere; the time of a method is the
median of --repeats runs, and each goal is checked on the median of the repeats' ratios (a
repeat runs the methods back to back, so its ratio does not see the machine drift between
repeats). Imports (siftline's including the modules `siftline.run` loads late) are left out of
the timer and shown apart.

    python scripts/bench_throughput.py --mb 200 --repeats 7 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20240601
DATA_VERSION = 2
N_FILES = 8
DOC_BYTES = 2000
DUP_RATE = 0.05
WS_VARIANT_RATE = 0.3  # share of duplicates that differ from their original in whitespace only
METHODS = {
    "ceiling": "pyarrow read_json + write_table (ceiling)",
    "siftline": "siftline run (exact dedupe)",
    "siftline-fallback": "siftline run, no C builds (as without a C compiler)",
    "datatrove": "datatrove JsonlReader -> ParquetWriter",
}
METHOD_ENV = {"siftline-fallback": {"SIFTLINE_KERNELS": "numba"}}  # pipeline/c_kernels.py
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
COMMON_WORDS = (
    "the of and to a in is that for it as was with be by on not he this are or his from at which"
    " but have an they you were her she there one all we their can has more would will if its no"
    " been when who so time people year way day man thing woman life child world school state"
    " family student group country problem hand part place case week company system program"
    " café naïve über Zürich señor façade — “quoted” 10 2024 3.5"
)
SYLLABLES = "ka lo ri men tas ver on el ust pra di ne sho bar qui ter an ex ol mi pe dra in cor"
SEPARATORS = ((" ", 0.87), (", ", 0.06), (". ", 0.06), (".\n\n", 0.01))
DOMAINS, DOMAIN_P = ("web", "news", "wiki", "forum", "books"), (0.5, 0.2, 0.15, 0.1, 0.05)


# -- data ------------------------------------------------------------------------------------
def token_table(rng: np.random.Generator) -> tuple[list[str], np.ndarray, float]:
    """Word+separator tokens, their cumulative Zipf probabilities and mean byte length.

    Common English words come first (most frequent), then pseudo-words made of syllables.
    """
    syllables = SYLLABLES.split()
    draws = ("".join(rng.choice(syllables, rng.integers(1, 5))) for _ in range(25_000))
    words = list(dict.fromkeys([*COMMON_WORDS.split(), *draws]))
    word_p = 1.0 / np.arange(1, len(words) + 1) ** 1.1
    sep_p = np.array([p for _, p in SEPARATORS])
    tokens = [w + s for w in words for s, _ in SEPARATORS]
    probs = np.outer(word_p / word_p.sum(), sep_p).ravel()
    mean = float(sum(p * len(t.encode()) for t, p in zip(tokens, probs, strict=True)))
    return tokens, np.cumsum(probs), mean


def whitespace_variant(text: str, rng: np.random.Generator) -> str:
    """The same text up to whitespace: siftline's normalisation must treat it as a duplicate."""
    cut = int(rng.integers(0, max(len(text) - 1, 1)))
    cut = text.find(" ", cut)
    body = text if cut < 0 else text[:cut] + " \t " + text[cut + 1 :]
    return "  " + body + "\n"


class Corpus:
    """Deterministic English-like documents with injected exact and whitespace duplicates."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(SEED)
        self.tokens, self.cdf, self.mean_token = token_table(self.rng)
        self.texts: list[str] = []
        self.counts = {"docs": 0, "duplicates": 0, "ws_variants": 0}

    def text(self) -> str:
        """A fresh Zipfian text, or an earlier one (DUP_RATE), sometimes re-spaced."""
        rng = self.rng
        if self.texts and rng.random() < DUP_RATE:
            self.counts["duplicates"] += 1
            text = self.texts[int(rng.integers(0, len(self.texts)))]
            if rng.random() >= WS_VARIANT_RATE:
                return text
            self.counts["ws_variants"] += 1
            return whitespace_variant(text, rng)
        size = float(np.clip(rng.lognormal(np.log(DOC_BYTES), 0.5), 200, 20_000))
        picks = np.searchsorted(self.cdf, rng.random(int(size / self.mean_token) + 1))
        self.texts.append("".join([self.tokens[i] for i in picks.tolist()]).strip())
        return self.texts[-1]

    def line(self) -> bytes:
        """The next document as one UTF-8 JSON line."""
        domain = DOMAINS[int(self.rng.choice(len(DOMAINS), p=DOMAIN_P))]
        record = {"id": f"d{self.counts['docs']:08d}", "text": self.text(), "domain": domain}
        self.counts["docs"] += 1
        return (json.dumps(record, ensure_ascii=False) + "\n").encode()


def generate(data: Path, mb: int) -> dict[str, Any]:
    """Write N_FILES JSON Lines files of about mb/N_FILES MB each, once (cached by a meta file)."""
    meta_path = data.parent / f"{data.name}.json"
    wanted = {"version": DATA_VERSION, "seed": SEED, "mb": mb}
    if meta_path.exists() and data.is_dir():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()):
            return meta
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    corpus, total = Corpus(), 0
    for k in range(N_FILES):
        with open(data / f"part-{k:02d}.jsonl", "wb") as handle:
            written = 0
            while written < mb * 1_000_000 // N_FILES:
                written += handle.write(corpus.line())
            total += written
    meta = {**wanted, **corpus.counts, "bytes": total, "files": N_FILES}
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


# -- child: one method, one core ---------------------------------------------------------------
Job = Callable[[], dict[str, Any]]


def run_ceiling(data: Path, out: Path) -> Job:
    """pyarrow alone: read_json + write_table (zstd), file by file."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    def job() -> dict[str, Any]:
        for path in sorted(data.glob("*.jsonl")):
            table = pj.read_json(path, read_options=pj.ReadOptions(use_threads=False))
            pq.write_table(table, out / f"{path.stem}.parquet", compression="zstd")
        return {}

    return job


def run_siftline(data: Path, out: Path) -> Job:
    """The whole siftline job: plan, read+hash, shuffle, finalize, stats and manifest."""
    import fsspec  # noqa: F401  -- heavy imports of the job, so the timer leaves them out
    import numba  # noqa: F401
    import pandas  # noqa: F401  -- pyarrow imports it lazily on the first pa.array()
    import pyarrow.parquet  # noqa: F401

    import siftline
    import siftline.job.runner  # noqa: F401  -- the job's own modules, which run() imports late
    from siftline.config import builtin_stage_names

    config = siftline.load_config({
        "input": {"paths": [str(data)]},
        "output": {"path": str(out), "compression": "zstd"},
        "executor": {"kind": "local"},
        "stages": {name: {"enabled": name == "exact_dedupe"} for name in builtin_stage_names()},
        "mixture": {"enabled": False},  # domain weights + their plot: not read -> dedupe -> write
    })

    def job() -> dict[str, Any]:
        stats = siftline.run(config).stats
        return {"phases": stats["wall_time_s"], "dropped": stats["dropped"]}

    return job


def run_datatrove(data: Path, out: Path) -> Job:
    """datatrove's JsonlReader -> ParquetWriter (zstd) as one local task."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter

    executor = LocalPipelineExecutor(
        pipeline=[JsonlReader(str(data)), ParquetWriter(str(out / "data"), compression="zstd")],
        tasks=1, workers=1, logging_dir=str(out / "logs"),
    )

    def job() -> dict[str, Any]:
        executor.run()
        return {}

    return job


RUNNERS: dict[str, Callable[[Path, Path], Job]] = {
    "ceiling": run_ceiling, "siftline": run_siftline, "siftline-fallback": run_siftline,
    "datatrove": run_datatrove}


def child(method: str, data: Path, out: Path) -> None:
    """Pin to CPU 0 with one Arrow thread, time one method (its imports apart), print JSON."""
    os.sched_setaffinity(0, {0})
    imports = time.perf_counter()
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    job = RUNNERS[method](data, out)
    imports = time.perf_counter() - imports
    wall, cpu = time.perf_counter(), time.process_time()
    result = job()
    result["import_seconds"] = imports
    result["seconds"] = time.perf_counter() - wall
    result["cpu_seconds"] = time.process_time() - cpu
    result["out_bytes"] = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    print(json.dumps(result))


# -- parent ------------------------------------------------------------------------------------
def run_once(method: str, data: Path, out: Path) -> dict[str, Any]:
    """One run of `method` in a fresh single-threaded subprocess, into a fresh folder."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, "1"), **METHOD_ENV.get(method, {})}
    cmd = [sys.executable, __file__, "--child", method, "--data", str(data), "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    shutil.rmtree(out, ignore_errors=True)
    os.sync()  # untimed: the next run does not share the disk with this one's writes
    if proc.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def balanced_orders(methods: list[str], repeats: int) -> list[list[str]]:
    """The methods' order in each repeat: rows of a Williams square, so that over every
    len(methods) repeats each method runs right after each other one once. A run right after
    another one is measurably slower here (BENCHMARKS.md), and a fixed order would charge that
    to the same method every time."""
    n = len(methods)
    first = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]
    return [[methods[(j + i) % n] for j in first] for i in range(repeats)]


def median_phases(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per stats.json phase, plus what the phases do not cover."""
    names = runs[0]["phases"]
    phases = {name: statistics.median(r["phases"][name] for r in runs) for name in names}
    phases["other (plan, stats, manifest, cleanup)"] = statistics.median(
        r["seconds"] - sum(r["phases"].values()) for r in runs)
    return phases


def report(meta: dict[str, Any], runs: dict[str, list[dict[str, Any]]], markdown: bool) -> str:
    """The throughput table, siftline's phases and the two goal checks."""
    def median(method: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[method])

    secs = {m: median(m, "seconds") for m in METHODS}
    cpu = {m: median(m, "cpu_seconds") for m in METHODS}
    head = ["method", "wall s (median)", "range", "CPU s", "docs/s (1 core)", "MB/s (1 core)",
            "output MB", "vs ceiling", "imports s (untimed)"]
    rows = [[METHODS[m], f"{secs[m]:.2f}",
             f"{min(r['seconds'] for r in runs[m]):.2f}-{max(r['seconds'] for r in runs[m]):.2f}",
             f"{cpu[m]:.2f}", f"{meta['docs'] / secs[m]:,.0f}",
             f"{meta['bytes'] / 1e6 / secs[m]:.1f}", f"{median(m, 'out_bytes') / 1e6:.1f}",
             f"{secs['ceiling'] / secs[m]:.2f}", f"{median(m, 'import_seconds'):.2f}"]
            for m in METHODS]
    phases = median_phases(runs["siftline"])
    prows = [[name, f"{sec:.2f}", f"{sec / secs['siftline']:.0%}"] for name, sec in phases.items()]
    dropped = runs["siftline"][0]["dropped"].get("exact_duplicate", 0)
    checks = []
    for other, goal in (("ceiling", 0.7), ("datatrove", 2.0)):
        ratio, by_cpu = secs[other] / secs["siftline"], cpu[other] / cpu["siftline"]
        # each repeat runs the methods back to back: its ratio is free of the machine's drift
        paired = sorted(a["seconds"] / b["seconds"]
                        for a, b in zip(runs[other], runs["siftline"], strict=True))
        verdict = statistics.median(paired)
        checks.append(f"- siftline / {other} = {verdict:.2f}, the median of the {len(paired)}"
                      f" repeats' ratios ({paired[0]:.2f}-{paired[-1]:.2f}); of the medians"
                      f" {ratio:.2f} by wall time, {by_cpu:.2f} by CPU time; goal >= {goal}:"
                      f" {'PASS' if verdict >= goal else 'FAIL'}")
    return "\n".join([
        f"input: {meta['docs']:,} docs, {meta['bytes'] / 1e6:.1f} MB of JSONL in"
        f" {meta['files']} files; {meta['duplicates']:,} injected duplicates"
        f" ({meta['ws_variants']:,} differ only in whitespace); siftline dropped {dropped:,}"
        " as exact_duplicate"
        f" ({'matches' if dropped == meta['duplicates'] else 'DOES NOT match'}).",
        "All write zstd Parquet (datatrove's default would be snappy); siftline's output"
        " MB includes its scored/ side files. The goals are checked on siftline as installed"
        " (its C kernels); the no-C row is what an install without a C compiler runs.", "",
        table(head, rows, markdown), "",
        "siftline per phase (stats.json wall_time_s, median):", "",
        table(["phase", "seconds", "share"], prows, markdown), "", *checks,
    ])


def table(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Markdown or aligned plain text."""
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*r) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="input size in MB (default 300)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/siftline-bench"))
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out)
        return
    data = args.workdir / f"data-{args.mb}mb"
    meta = generate(data, args.mb)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for i, order in enumerate(balanced_orders(list(METHODS), args.repeats)):
        for method in order:  # interleaved, so drift hits every method alike
            runs[method].append(run_once(method, data, args.workdir / "out" / method))
            print(f"repeat {i + 1}/{args.repeats} {method}: {runs[method][-1]['seconds']:.2f}s",
                  file=sys.stderr)
    print(report(meta, runs, args.markdown))


if __name__ == "__main__":
    main()
