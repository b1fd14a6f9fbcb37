"""Where siftline's read -> exact-dedupe -> write time goes, beside pyarrow's read + write.

Companion to bench_throughput.py, on its generated data. Two tables, CPU seconds, one process
pinned to CPU 0 with one thread everywhere:

1. Per file, warm (best of --repeats in one process): pyarrow's read_json and write_table,
   and siftline's steps on the same file: read_split (and, apart, the blocks' parse inside it:
   the compiled parser's where it is built, else pyarrow's with its screen), the stages (local
   reasons + exact hash), the staged Arrow write, the data Parquet write.
2. Whole jobs (`siftline.run`, local executor, exact dedupe only), with their minor page
   faults: on a 1 MB slice in a fresh process (what a job costs regardless of its size), and
   on all the data in a fresh process, then again in that same process (the warm second run
   has no fixed or first-touch costs).
Then the first call into the compiled kernels in a fresh process.

    python scripts/bench_throughput_breakdown.py --mb 200 --markdown
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _bench_throughput() -> Any:
    """bench_throughput.py as a module: its data generator and job config are the reference."""
    spec = importlib.util.spec_from_file_location("bench_throughput", HERE / "bench_throughput.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _pin() -> None:
    os.sched_setaffinity(0, {0})
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _best_cpu(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def _config(inputs: Path, out: Path) -> Any:
    import siftline
    from siftline.config import builtin_stage_names

    return siftline.load_config({
        "input": {"paths": [str(inputs)]},
        "output": {"path": str(out), "compression": "zstd"},
        "executor": {"kind": "local"},
        "stages": {name: {"enabled": name == "exact_dedupe"} for name in builtin_stage_names()},
        "mixture": {"enabled": False},
    })


# -- children ----------------------------------------------------------------------------------
def per_file(path: Path, scratch: Path, repeats: int) -> dict[str, float]:
    """CPU seconds of each step on one file, warm."""
    _pin()
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from siftline.io.inputs import plan_splits
    from siftline.io.jsonl import iter_blocks
    from siftline.io.jsonl_compiled import CompiledJsonl
    from siftline.io.jsonl_fast import FastJsonl
    from siftline.io.readers import read_split
    from siftline.io.storage import Storage
    from siftline.io.writers import parquet_bytes, write_table_ipc
    from siftline.job.finalize import DATA_COLUMNS
    from siftline.stages.chain import apply_stages, build_stages

    scratch.mkdir(parents=True, exist_ok=True)
    config = _config(path, scratch / "out")
    storage = Storage()
    splits = plan_splits(config.input, storage, [str(path)])
    stages = build_stages(config)
    max_bytes = int(config.input.max_doc_bytes)
    times: dict[str, float] = {}
    times["pyarrow read_json"], table = _best_cpu(
        lambda: pj.read_json(path, read_options=pj.ReadOptions(use_threads=False)), repeats)
    times["pyarrow write_table"], _ = _best_cpu(
        lambda: pq.write_table(table, scratch / "ceiling.parquet", compression="zstd"), repeats)
    times["siftline read_split"], batches = _best_cpu(
        lambda: [b.table for s in splits for b in read_split(s, config.input, storage)], repeats)
    with storage.open(str(path), "rb") as stream:
        blocks = [block for _, block in iter_blocks(stream, 0, None) if block is not None]
    fields = config.input.fields
    reader = CompiledJsonl if CompiledJsonl.usable(fields, None) else FastJsonl
    label = "C parse" if reader is CompiledJsonl else "pyarrow parse + screen"
    times[f"  of which the blocks' {label}"], _ = _best_cpu(
        lambda: [list(reader(fields, str(path), None).block(b, 0, 0)[1]) for b in blocks],
        repeats)
    import pyarrow as pa

    read = pa.concat_tables(batches)
    times["siftline stages (reasons + hash)"], scored = _best_cpu(
        lambda: apply_stages(read, stages, max_bytes), repeats)
    times["siftline staged write"], _ = _best_cpu(
        lambda: write_table_ipc(storage, str(scratch / "stage.arrow"), scored, durable=False),
        repeats)
    times["siftline data write (fsync)"], _ = _best_cpu(
        lambda: storage.write_bytes(str(scratch / "data.parquet"),
                                    parquet_bytes(scored.select(DATA_COLUMNS), "zstd")), repeats)
    return times


def whole_jobs(inputs: Path, scratch: Path, runs: int) -> list[tuple[float, int]]:
    """CPU seconds and minor page faults of `runs` consecutive jobs in this one process
    (imports left out, as in bench_throughput.py)."""
    _pin()
    import fsspec  # noqa: F401
    import numba  # noqa: F401
    import pandas  # noqa: F401  -- pyarrow imports it lazily on the first pa.array()
    import pyarrow.parquet  # noqa: F401

    import siftline
    import siftline.job.runner  # noqa: F401  -- imported late by run(); an import all the same

    jobs = []
    for i in range(runs):
        out = scratch / f"job-{i}"
        shutil.rmtree(out, ignore_errors=True)
        config = _config(inputs, out)
        start, faults = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        siftline.run(config)
        jobs.append((time.process_time() - start,
                     resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
    return jobs


def first_dispatch(_path: Path, _scratch: Path, _n: int) -> dict[str, Any]:
    """CPU seconds of the first call into the compiled kernels (the reader's and the hash's:
    the C builds made at install, or numba's, cached on disk) in a fresh process with the job's
    modules imported, and whether numba imported scipy on the way (its BLAS check does, where
    scipy is installed)."""
    _pin()
    import fsspec  # noqa: F401
    import numba  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow as pa

    import siftline.job.runner  # noqa: F401
    from siftline.config import FieldMap
    from siftline.dedupe import normalize
    from siftline.dedupe.normalize import normalized_hashes
    from siftline.io import jsonl_compiled, jsonl_scan
    from siftline.io.jsonl_fast import FastJsonl, screen

    had_scipy = "scipy.linalg" in sys.modules
    start = time.process_time()
    if jsonl_compiled.CompiledJsonl.usable(FieldMap(), None):
        list(jsonl_compiled.CompiledJsonl(FieldMap(), "s", None).block(b'{"text": "a"}\n', 0, 0)[1])
    else:
        screen(b'{"text": "a b"}\n')
        list(FastJsonl(FieldMap(), "s", None).block(b'{"text": "a"}\n', 0, 0)[1])
    normalized_hashes(pa.array(["a  b"]))
    seconds = time.process_time() - start
    builds = {"C" if module.compiled is not None else "numba"
              for module in (jsonl_compiled if jsonl_compiled.compiled else jsonl_scan,
                             normalize)}
    return {"seconds": seconds, "imported_scipy": not had_scipy and "scipy.linalg" in sys.modules,
            "build": " and ".join(sorted(builds))}


def _child(args: list[str]) -> Any:
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, "1")}
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- parent ------------------------------------------------------------------------------------
def _slice(data: Path, dest: Path, size: int) -> Path:
    """The first whole lines of the first file, about `size` bytes."""
    dest.mkdir(parents=True, exist_ok=True)
    first = sorted(data.glob("*.jsonl"))[0].read_bytes()[:size]
    (dest / "slice.jsonl").write_bytes(first[: first.rfind(b"\n") + 1])
    return dest


def _table(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True))
                     for r in [head, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/siftline-bench"))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, scratch, n = args.child
        fn = {"file": per_file, "jobs": whole_jobs, "dispatch": first_dispatch}[kind]
        print(json.dumps(fn(Path(path), Path(scratch), int(n))))
        return
    data = args.workdir / f"data-{args.mb}mb"
    meta = _bench_throughput().generate(data, args.mb)
    scratch = args.workdir / "breakdown"
    shutil.rmtree(scratch, ignore_errors=True)
    first = sorted(data.glob("*.jsonl"))[1]
    steps = _child(["file", str(first), str(scratch / "file"), str(args.repeats)])
    tiny = _child(["jobs", str(_slice(data, scratch / "slice", 1 << 20)), str(scratch / "t"), "1"])
    cold, warm = _child(["jobs", str(data), str(scratch / "all"), "2"])
    dispatch = _child(["dispatch", str(data), str(scratch), "1"])
    shutil.rmtree(scratch, ignore_errors=True)

    mb = first.stat().st_size / 1e6
    ours = sum(v for k, v in steps.items() if k.startswith("siftline"))
    theirs = steps["pyarrow read_json"] + steps["pyarrow write_table"]
    rows = [[k, f"{v:.3f}", f"{mb / v:.0f}"] for k, v in steps.items()]
    rows += [["pyarrow read + write", f"{theirs:.3f}", f"{mb / theirs:.0f}"],
             ["siftline, all steps", f"{ours:.3f}", f"{mb / ours:.0f}"]]
    print(f"one file of {mb:.1f} MB, warm, best of {args.repeats} (CPU s):\n")
    print(_table(["step", "CPU s", "MB/s"], rows, args.markdown))
    print(f"\nsteady state: siftline / ceiling = {theirs / ours:.2f}\n")
    mb_all = f"{meta['bytes'] / 1e6:.0f} MB"
    jobs = [[name, f"{cpu:.2f}", f"{faults:,}"] for name, (cpu, faults) in [
        ("1 MB slice, fresh process", tiny[0]), (f"all {mb_all}, fresh process", cold),
        (f"all {mb_all}, again in the same process", warm)]]
    print("whole siftline jobs:\n")
    print(_table(["job", "CPU s", "minor page faults"], jobs, args.markdown))
    scipy = ("importing scipy.linalg on the way" if dispatch["imported_scipy"]
             else "scipy.linalg not imported")
    print(f"\nfirst call into the compiled kernels ({dispatch['build']} build) in a fresh process:"
          f" {dispatch['seconds']:.2f} CPU s ({scipy})")


if __name__ == "__main__":
    main()
