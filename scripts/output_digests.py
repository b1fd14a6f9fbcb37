"""sha256 digests of what reference jobs write to `data/` and `scored/`: run before and after a
change that must not change the output, and compare.

Jobs (each on the local executor, into a scratch folder):
  demo              configs/default.yaml: exact + near dedupe, CoLoR-Filter with tiny models
  throughput        bench_throughput.py's generated corpus (--mb MB), exact dedupe only
  color_preselect   a 2 MB demo slice: exact dedupe, PreSelect (classifier built from three tiny
                    reference LMs) and CoLoR-Filter (tiny prior and conditional) together

    python scripts/output_digests.py --json before.json
    python scripts/output_digests.py --json after.json --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("data", "scored")
TINY = {"vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 64}
TRAIN = {"batch_size": 8, "threads": 1, "eval_every": 1000, "device": "cpu", "lr": 0.01}


def demo(out: Path, scratch: Path, mb: int) -> dict[str, Any]:
    return {"source": str(ROOT / "configs" / "default.yaml"),
            "overrides": {"executor.kind": "local", "output.path": str(out)}}


def throughput(out: Path, scratch: Path, mb: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_throughput import generate

    data = scratch / f"throughput-{mb}mb"
    generate(data, mb)
    return {"source": {
        "input": {"paths": [str(data)]}, "output": {"path": str(out), "compression": "zstd"},
        "executor": {"kind": "local"}, "mixture": {"enabled": False},
        "stages": {"exact_dedupe": {"enabled": True}}}, "overrides": {}}


def color_preselect(out: Path, scratch: Path, mb: int) -> dict[str, Any]:
    score = {"device": "cpu", "threads": 1}
    return {"source": {
        "input": {"paths": ["demo://stdlib?max_bytes=2000000"]},
        "output": {"path": str(out)}, "executor": {"kind": "local"},
        "mixture": {"enabled": False},
        "stages": {
            "exact_dedupe": {"enabled": True},
            "preselect": {
                "enabled": True, "keep": 0.5, "models_dir": str(out.parent / "ps-models"),
                "train_references": {
                    "models": [{"name": n, "model": TINY, "train": {**TRAIN, "tokens": t}}
                               for n, t in (("short", 10_000), ("mid", 25_000),
                                            ("long", 50_000))],
                    "eval": {"domain": "docs", "holdout_fraction": 0.5}, "score": score},
                "label": {"score": score},
                "fasttext": {"dim": 10, "bucket": 5000, "epoch": 10}},
            "color_filter": {
                "enabled": True, "tau": 2, "models_dir": str(out.parent / "color-models"),
                "target": {"domain": "docs", "holdout_fraction": 0.5},
                "train": {"model": TINY, "sample": {"max_bytes": 300_000},
                          "prior": {**TRAIN, "tokens": 40_000},
                          "conditional": {**TRAIN, "epochs": 1, "lr": 1e-3}},
                "score": score}}}, "overrides": {}}


JOBS = {"demo": demo, "throughput": throughput, "color_preselect": color_preselect}


def digests(out: Path) -> dict[str, str]:
    """Per file under data/ and scored/, and one over all of them in name order."""
    files = sorted(p for folder in FOLDERS for p in (out / folder).rglob("*") if p.is_file())
    sums = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    total = hashlib.sha256("".join(f"{k} {v}\n" for k, v in sums.items()).encode()).hexdigest()
    return {"*": total, **sums}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated job names")
    parser.add_argument("--mb", type=int, default=200, help="throughput corpus size")
    parser.add_argument("--scratch", type=Path, default=None, help="kept between runs: the "
                        "generated corpus is reused (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the digests here")
    parser.add_argument("--compare", type=Path, help="digests of an earlier run to compare with")
    args = parser.parse_args()

    import siftline

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="siftline-digests-"))
    result: dict[str, dict[str, str]] = {}
    for name in args.jobs.split(","):
        out = scratch / "out" / name
        shutil.rmtree(out.parent, ignore_errors=True)
        job = JOBS[name](out, scratch, args.mb)
        stats = siftline.run(siftline.load_config(job["source"], job["overrides"])).stats
        result[name] = digests(out)
        print(f"{name:16s} {result[name]['*']}  ({len(result[name]) - 1} files, "
              f"kept {stats['kept']} of {stats['input_records']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = [name for name in result if before.get(name, {}) != result[name]]
        print("identical to", args.compare if not differ else f"DIFFERENT: {differ}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
