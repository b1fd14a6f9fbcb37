"""Scaling of the CPU stages on Ray: the same job with 1 and with 2 Ray workers.

The job is the demo pipeline's CPU part (read -> exact dedupe -> near dedupe -> select+write)
over bench_throughput.py's synthetic English-like JSON Lines (`--corpus synthetic`, any size,
split into byte ranges of `--split-mb`) or the standard-library demo corpus cut into equal
compressed shards (`--corpus demo`, 34 MB at most). Each run is a fresh subprocess with an
embedded Ray of 1 or 2 CPUs, one thread everywhere; runs are interleaved and the median of
`--repeats` is reported. Ray's start-up is outside the timed phases (reported apart), and so is
the workers' warm-up (imports and numba kernels, stats.json's `warm_up` phase, its own column);
the phases' wall times come from stats.json.

    python scripts/bench_ray_scaling.py --corpus synthetic --mb 200 --repeats 2 --markdown
    python scripts/bench_ray_scaling.py --corpus demo --mb 34 --shard-kb 1000 --repeats 2
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PARALLEL_PHASES = ("read+score", "exact_dedupe", "near_dedupe", "select+write")


def child(corpus: str, out: str, workers: int, split_bytes: int) -> None:
    """One timed run (in its own process); prints a JSON line."""
    import ray

    from siftline import load_config
    from siftline.executors.ray_executor import _quiet_local_env
    from siftline.job.runner import run

    _quiet_local_env()
    started = time.perf_counter()
    # Ray started here, so its start-up stays out of the job's phases (the job joins it)
    ray.init(address="local", num_cpus=workers, include_dashboard=False,
             _node_ip_address="127.0.0.1")
    ray_start = time.perf_counter() - started
    config = load_config({
        "input": {"paths": [corpus], "split_bytes": split_bytes}, "output": {"path": out},
        "executor": {"kind": "ray", "num_workers": workers},
        "stages": {"exact_dedupe": {"partitions": 4}, "near_dedupe": {"enabled": True}},
    })
    began = time.perf_counter()
    result = run(config)
    job_s = time.perf_counter() - began
    ray.shutdown()
    print(json.dumps({"workers": workers, "ray_start_s": ray_start, "job_s": job_s,
                      "phases": result.stats["wall_time_s"],
                      "docs": result.stats["input_records"],
                      "kept": result.stats["kept"]}))


def one_run(corpus: Path, scratch: Path, workers: int, split_bytes: int) -> dict[str, Any]:
    out = scratch / f"out-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, "1"), "RAY_DEDUP_LOGS": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", str(corpus), str(out),
                           str(workers), str(split_bytes)],
                          env=env, capture_output=True, text=True, check=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"workers"')][-1]
    return json.loads(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", choices=("synthetic", "demo"), default="synthetic")
    parser.add_argument("--mb", type=float, default=200.0, help="corpus size (MB of text)")
    parser.add_argument("--shard-kb", type=int, default=1000, help="demo: compressed shards")
    parser.add_argument("--split-mb", type=int, default=10, help="synthetic: split size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", default="/tmp/siftline-bench-scaling")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("CORPUS", "OUT", "WORKERS", "SPLIT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), int(args.child[3]))
        return 0

    from siftline.demo.corpus import build_demo_corpus

    scratch = Path(args.scratch)
    split_bytes = 64_000_000
    if args.corpus == "demo":
        corpus = scratch / f"corpus-{args.mb:g}mb-{args.shard_kb}kb"
        shards = build_demo_corpus(corpus, max_bytes=int(args.mb * 1e6),
                                   shard_bytes=args.shard_kb * 1000)
        text_mb = sum(len(json.loads(line)["text"].encode()) for line in _lines(shards)) / 1e6
        pieces = f"{len(shards)} zstd shards"
    else:
        sys.path.insert(0, str(ROOT / "scripts"))
        from bench_throughput import generate

        corpus = scratch / f"synthetic-{int(args.mb)}mb"
        meta = generate(corpus, int(args.mb))
        text_mb, split_bytes = meta["bytes"] / 1e6, args.split_mb * 1_000_000
        pieces = f"{meta['files']} JSON Lines files in splits of {args.split_mb} MB"
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):
            runs[workers].append(one_run(corpus, scratch, workers, split_bytes))
            print(f"workers={workers}: {runs[workers][-1]}", file=sys.stderr)
    report(runs, text_mb, pieces, os.getloadavg(), args.markdown)
    return 0


def _lines(shards: list[Path]) -> list[str]:
    import zstandard

    out: list[str] = []
    for path in shards:
        out += zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read().decode(
            ).splitlines()
    return [line for line in out if line]


def report(runs: dict[int, list[dict[str, Any]]], text_mb: float, pieces: str,
           load: tuple[float, float, float], markdown: bool) -> None:
    docs = runs[1][0]["docs"]
    print(f"input: {docs:,} documents, {text_mb:.1f} MB in {pieces}; "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    rows, medians, with_warm = [], {}, {}
    for workers, items in runs.items():
        phase_s = [sum(r["phases"].get(p, 0.0) for p in PARALLEL_PHASES) for r in items]
        warm_s = [r["phases"].get("warm_up", 0.0) for r in items]
        job_s = [r["job_s"] for r in items]
        medians[workers] = statistics.median(phase_s)
        with_warm[workers] = statistics.median(p + w for p, w in zip(phase_s, warm_s,
                                                                     strict=True))
        rows.append((workers, statistics.median(phase_s), min(phase_s), max(phase_s),
                     statistics.median(warm_s), statistics.median(job_s),
                     statistics.median(r["ray_start_s"] for r in items),
                     docs / statistics.median(phase_s), text_mb / statistics.median(phase_s)))
    header = ("| Ray workers | CPU stages s (median) | range | warm-up s | whole job s | "
              "Ray start s | docs/s | MB/s |")
    print(header if markdown else header.replace("|", " "))
    if markdown:
        print("|---|---|---|---|---|---|---|---|")
    for w, med, lo, hi, warm, job, start, dps, mbs in rows:
        print(f"| {w} | {med:.2f} | {lo:.2f}-{hi:.2f} | {warm:.2f} | {job:.2f} | {start:.2f} | "
              f"{dps:,.0f} | {mbs:.2f} |")
    per_phase = {p: [statistics.median(r["phases"].get(p, 0.0) for r in runs[w]) for w in (1, 2)]
                 for p in PARALLEL_PHASES}
    print("\n| phase | 1 worker s | 2 workers s | speed-up |\n|---|---|---|---|")
    for phase, (one, two) in per_phase.items():
        print(f"| {phase} | {one:.2f} | {two:.2f} | {one / two if two else float('nan'):.2f} |")
    speedup = medians[1] / medians[2]
    print(f"\nspeed-up of the CPU stages on 2 workers: {speedup:.2f}x (goal >= 1.7x): "
          f"{'PASS' if speedup >= 1.7 else 'FAIL'}")
    job = {w: statistics.median(r["job_s"] for r in items) for w, items in runs.items()}
    print(f"with the warm-up counted in: {with_warm[1] / with_warm[2]:.2f}x; whole job "
          f"(plan, warm-up, phases, stats): {job[1] / job[2]:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
