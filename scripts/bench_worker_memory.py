"""Peak resident memory of one Ray worker per phase, against the split size.

The job is configs/default.yaml's CPU part (read -> exact dedupe -> near dedupe -> select+write;
CoLoR-Filter and the domain weights off) on an embedded Ray with one worker, one thread
everywhere, each run a fresh process. Inputs: the default config's demo corpus as it is (zstd
shards: one split per shard), and bench_throughput.py's synthetic JSON Lines at several
`input.split_bytes`. The figures are stats.json's `peak_worker_rss_mb` (the worker's VmHWM,
reset at each phase's start). A least-squares line through the synthetic runs gives
"peak ≈ base + k × split MB".

    python scripts/bench_worker_memory.py --mb 200 --split-mb 4 8 16 32 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PHASES = ("read+score", "exact_dedupe", "near_dedupe", "select+write")


def child(corpus: str, out: str, split_bytes: int) -> None:
    """One run (in its own process); prints a JSON line."""
    from siftline import load_config
    from siftline.job.runner import run

    overrides: dict[str, Any] = {
        "output.path": out, "executor.kind": "ray", "executor.num_workers": 1,
        "stages.color_filter.enabled": False, "mixture.enabled": False,
    }
    if corpus != "default":
        overrides.update({"input.paths": [corpus], "input.split_bytes": split_bytes})
    result = run(load_config(str(ROOT / "configs" / "default.yaml"), overrides))
    manifest = result.manifest
    split_sizes = [(s["end"] if s["end"] is not None else s["file_size"]) - s["start"]
                   for s in manifest["splits"]]
    print(json.dumps({
        "peaks": result.stats["peak_worker_rss_mb"], "phases": result.stats["wall_time_s"],
        "docs": result.stats["input_records"], "splits": len(split_sizes),
        "split_mb": max(split_sizes) / 1e6,
        "split_docs": max(r["rows"] + r["quarantined"] for r in manifest["split_records"]),
    }))


def one_run(corpus: str, scratch: Path, split_bytes: int) -> dict[str, Any]:
    out = scratch / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, "1")}
    proc = subprocess.run([sys.executable, __file__, "--child", corpus, str(out),
                           str(split_bytes)], env=env, capture_output=True, text=True,
                          check=False, cwd=scratch)
    if proc.returncode:
        raise SystemExit(f"run failed ({corpus}, {split_bytes}):\n{proc.stderr[-3000:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith('{"peaks"')][-1])


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b·x; returns a, b and the largest residual."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    a = my - b * mx
    return a, b, max(abs(y - a - b * x) for x, y in zip(xs, ys, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=int, default=200, help="synthetic corpus size (MB)")
    parser.add_argument("--split-mb", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--no-demo", action="store_true", help="skip the default config's input")
    parser.add_argument("--scratch", default="/tmp/siftline-bench-memory")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("CORPUS", "OUT", "SPLIT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_throughput import generate

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    corpus = scratch / f"synthetic-{args.mb}mb"
    meta = generate(corpus, args.mb)
    rows: list[tuple[str, dict[str, Any]]] = []
    if not args.no_demo:
        rows.append(("default config's demo input (zstd shards)", one_run("default", scratch, 0)))
        print(f"demo: {rows[-1][1]}", file=sys.stderr)
    for split_mb in args.split_mb:
        rows.append((f"synthetic {meta['bytes'] / 1e6:.0f} MB, split_bytes {split_mb} MB",
                     one_run(str(corpus), scratch, split_mb * 1_000_000)))
        print(f"split {split_mb} MB: {rows[-1][1]}", file=sys.stderr)
    report(rows, args.markdown)
    return 0


def report(rows: list[tuple[str, dict[str, Any]]], markdown: bool) -> None:
    header = ["input", "splits", "largest split MB", "its docs",
              *(f"{p} MB" for p in PHASES), "peak MB"]
    lines = [header, ["---"] * len(header)] if markdown else [header]
    for name, r in rows:
        peaks = [r["peaks"].get(p) for p in PHASES]
        lines.append([name, str(r["splits"]), f"{r['split_mb']:.1f}", f"{r['split_docs']:,}",
                      *("-" if v is None else f"{v:,.0f}" for v in peaks),
                      f"{max(v for v in peaks if v is not None):,.0f}"])
    for line in lines:
        print("| " + " | ".join(line) + " |" if markdown else "  ".join(line))
    synthetic = [r for name, r in rows if name.startswith("synthetic")]
    if len(synthetic) >= 2:
        xs = [r["split_mb"] for r in synthetic]
        print()
        for label, key in (("peak (any phase)", None), ("read+score", "read+score")):
            ys = [max(r["peaks"].values()) if key is None else r["peaks"][key]
                  for r in synthetic]
            base, k, worst = fit(xs, ys)
            print(f"{label}: peak ≈ {base:.0f} MB + {k:.1f} × split MB "
                  f"(largest residual {worst:.0f} MB)")


if __name__ == "__main__":
    raise SystemExit(main())
