"""Per-token NLL: fused kernels vs materialised logits + F.cross_entropy.

Three modes:

  --device cpu   the chunked torch path (`siftline.kernels.token_nll`, backend torch) against
                 materialised fp32 logits + F.cross_entropy(reduction="none"), T=4096, d in {256,
                 512, 768}, V in {8192, 32768, 50257}. Each (case, method) runs in a fresh
                 subprocess so its peak memory can be read honestly: peak MB is the growth of the
                 process's resident-set high-water mark (ru_maxrss) over its value once the inputs
                 are allocated, i.e. the extra memory the method needed at its worst moment. Warm-up
                 is one call on the first 256 tokens (CPU matmul has nothing to compile or tune;
                 this only loads kernels and wakes the thread pool).
  --device cuda  the Triton kernel vs eager torch (bf16 logits + F.cross_entropy, as users write
                 it, and an fp32-upcast variant) vs torch.compile of the upcast variant vs the
                 chunked torch path; T=16384, d in {768, 2048}, V in {50257, 128256}, bf16.
                 Times from torch.cuda.Event (median after warm-up, which also runs autotune
                 and compilation), TFLOP/s from 2*T*d*V, as a fraction of a bf16 matmul peak
                 measured here (8192^3), peak memory = max_memory_allocated - the inputs. Also
                 checks every method against a float64 reference on 2048 tokens of one case.
  --smoke        tiny shapes through every method of the cuda mode, on CPU, the Triton kernel
                 under TRITON_INTERPRET=1: exercises this script's logic without a GPU.

    python scripts/bench_token_nll.py --device cpu --repeats 3 --json out/bench_token_nll_cpu.json
    python scripts/bench_token_nll.py --device cuda --json out/bench_token_nll_cuda.json
    python scripts/bench_token_nll.py --smoke
"""

from __future__ import annotations

import os
import sys

if "--smoke" in sys.argv:  # triton reads this when kernels are decorated: before any import
    os.environ["TRITON_INTERPRET"] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
from siftline.kernels import token_nll  # noqa: E402

SEED = 20240611
WARMUP_TOKENS_CPU = 256
CHECK_TOKENS = 2048
Method = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Case:
    tokens: int
    dim: int
    vocab: int
    dtype: str

    @property
    def label(self) -> str:
        return f"T={self.tokens} d={self.dim} V={self.vocab} {self.dtype}"

    @property
    def flops(self) -> float:
        return 2.0 * self.tokens * self.dim * self.vocab


def make_inputs(case: Case, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """hidden [T, d], weight [V, d] scaled so logits are O(1..10), targets [T]."""
    gen = torch.Generator(device=device).manual_seed(SEED)
    dtype = getattr(torch, case.dtype)
    hidden = torch.randn(case.tokens, case.dim, device=device, generator=gen, dtype=dtype)
    weight = torch.randn(case.vocab, case.dim, device=device, generator=gen, dtype=dtype)
    weight.mul_(2.0 / case.dim**0.5)
    targets = torch.randint(0, case.vocab, (case.tokens,), device=device, generator=gen)
    return hidden, weight, targets


# ---------------------------------------------------------------- methods

def fused_torch(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return token_nll(h, w, t, backend="torch")


def fused_triton(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return token_nll(h, w, t, backend="triton")


def materialised(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What users write: logits in the input dtype, then cross-entropy."""
    return F.cross_entropy(h @ w.T, t, reduction="none")


def materialised_fp32(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The careful variant: logits upcast to fp32 before the softmax."""
    return F.cross_entropy((h @ w.T).float(), t, reduction="none")


CPU_METHODS: dict[str, Method] = {"fused torch path": fused_torch,
                                  "materialised + F.cross_entropy": materialised}
CPU_BASELINE = "materialised + F.cross_entropy"
GPU_BASELINE = "eager bf16 logits + F.cross_entropy"


def gpu_methods() -> dict[str, Method]:
    return {"triton fused": fused_triton,
            GPU_BASELINE: materialised,
            "eager fp32-upcast logits + F.cross_entropy": materialised_fp32,
            "torch.compile(fp32-upcast)": torch.compile(materialised_fp32, dynamic=False),
            "chunked torch path": fused_torch}


# ---------------------------------------------------------------- timing and memory

def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], device: str, repeats: int) -> list[float]:
    """Wall time per call in ms; CUDA events on a GPU (no host timing of async launches)."""
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin) * 1e3)
    return times


def max_rss_mb() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def matmul_peak_tflops(device: str, size: int, repeats: int = 10) -> float:
    """bf16 matmul throughput of this device: the denominator for 'fraction of peak'."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    ms = statistics.median(time_ms(lambda: a @ b, device, repeats))
    return 2.0 * size**3 / (ms * 1e-3) / 1e12


# ---------------------------------------------------------------- CPU mode (one process per run)

def cpu_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in the subprocess: one method on one case; returns times and peak RSS growth."""
    torch.set_grad_enabled(False)
    case = Case(**spec["case"])
    fn = CPU_METHODS[spec["method"]]
    hidden, weight, targets = make_inputs(case, "cpu")
    gc.collect()
    baseline = max_rss_mb()
    n = WARMUP_TOKENS_CPU
    fn(hidden[:n], weight, targets[:n])
    times = time_ms(lambda: fn(hidden, weight, targets), "cpu", spec["repeats"])
    return {"times_ms": times, "peak_mb": max_rss_mb() - baseline}


def run_cpu(cases: list[Case], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        for method in CPU_METHODS:
            spec = {"case": asdict(case), "method": method, "repeats": repeats}
            out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(make_row(case, method, result["times_ms"], result["peak_mb"]))
            print(f"  {case.label:<32} {method:<32} {rows[-1]['median_ms']:10.1f} ms",
                  file=sys.stderr, flush=True)
    add_speedups(rows, CPU_BASELINE)
    return rows


def make_row(case: Case, method: str, times: list[float], peak_mb: float | None,
             peak_tflops: float | None = None) -> dict[str, Any]:
    median = statistics.median(times)
    row = {"case": case.label, "method": method, "median_ms": median, "times_ms": times,
           "tokens_per_s": case.tokens / (median * 1e-3), "peak_mb": peak_mb,
           "tflops": case.flops / (median * 1e-3) / 1e12}
    row["fraction_of_peak"] = row["tflops"] / peak_tflops if peak_tflops else None
    return row


def add_speedups(rows: list[dict[str, Any]], baseline: str) -> None:
    base = {r["case"]: r["median_ms"] for r in rows if r["method"] == baseline}
    for row in rows:
        ref = base.get(row["case"])
        row["speedup"] = ref / row["median_ms"] if ref and row["median_ms"] else None


# ---------------------------------------------------------------- GPU mode (and --smoke on CPU)

def run_gpu(cases: list[Case], device: str, repeats: int, warmup: int, peak_tflops: float,
            on_case: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
            ) -> list[dict[str, Any]]:
    """Every method on every case; `on_case(rows so far)` after each case (partial results)."""
    methods = gpu_methods()
    rows: list[dict[str, Any]] = []
    for case in cases:
        hidden, weight, targets = make_inputs(case, device)
        for method, fn in methods.items():
            row = run_one_gpu(case, method, fn, (hidden, weight, targets), device, repeats,
                              warmup, peak_tflops)
            rows.append(row)
            shown = "failed" if row.get("error") else f"{row['median_ms']:10.2f} ms"
            print(f"  {case.label:<36} {method:<44} {shown}", file=sys.stderr, flush=True)
        del hidden, weight, targets
        if device == "cuda":
            torch.cuda.empty_cache()
        on_case(rows)
    add_speedups([r for r in rows if not r.get("error")], GPU_BASELINE)
    return rows


def run_one_gpu(case: Case, method: str, fn: Method, inputs: tuple[torch.Tensor, ...],
                device: str, repeats: int, warmup: int, peak_tflops: float) -> dict[str, Any]:
    """Warm-up (autotune, compile), peak memory of one call, then timed repeats."""
    try:
        for _ in range(warmup):
            fn(*inputs)
        sync(device)
        peak_mb = None
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn(*inputs)
            torch.cuda.synchronize()
            peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
        times = time_ms(lambda: fn(*inputs), device, repeats)
    except Exception as exc:  # one method failing (OOM, no compiler) must not sink the table
        return {"case": case.label, "method": method, "error": f"{type(exc).__name__}: {exc}"}
    return make_row(case, method, times, peak_mb, peak_tflops)


def reference_nll(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(h.double() @ w.double().T, t, reduction="none")


def correctness(case: Case, device: str, n_tokens: int) -> dict[str, Any]:
    """Each method against float64 on the first n_tokens: max |err| / (|ref| + 1) per method."""
    hidden, weight, targets = make_inputs(case, device)
    hidden, targets = hidden[:n_tokens], targets[:n_tokens]
    ref = reference_nll(hidden, weight, targets)
    report: dict[str, Any] = {"case": case.label, "tokens": n_tokens, "methods": {}}
    for method, fn in gpu_methods().items():
        try:
            got = fn(hidden, weight, targets).double()
            report["methods"][method] = float(((got - ref).abs() / (ref.abs() + 1)).max())
        except Exception as exc:
            report["methods"][method] = f"{type(exc).__name__}: {exc}"
    report["triton_within_2e-2"] = (isinstance(report["methods"]["triton fused"], float)
                                    and report["methods"]["triton fused"] <= 2e-2)
    return report


def best_triton_configs() -> dict[str, str]:
    """The autotuner's choice per (d, V) key, to record with the results."""
    try:
        from siftline.kernels import token_nll_triton as kt
    except ImportError:
        return {}
    return {f"{kind} {key}": str(cfg) for kind, tuner in getattr(kt, "TUNED", {}).items()
            if tuner is not None for key, cfg in getattr(tuner, "cache", {}).items()}


# ---------------------------------------------------------------- output

CPU_COLUMNS = [("case", "case"), ("method", "method"), ("median ms", "median_ms"),
               ("tokens/s", "tokens_per_s"), ("peak MB", "peak_mb"),
               ("speedup vs materialised", "speedup")]
GPU_COLUMNS = [("case", "case"), ("method", "method"), ("median ms", "median_ms"),
               ("tokens/s", "tokens_per_s"), ("TFLOP/s", "tflops"),
               ("of bf16 matmul peak", "fraction_of_peak"), ("peak MB beyond inputs", "peak_mb"),
               ("speedup vs eager bf16", "speedup")]


def fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key == "fraction_of_peak":
        return f"{value:.0%}"
    if key == "speedup":
        return f"{value:.2f}"
    if key == "tflops":
        return f"{value:.1f}" if value >= 1 else f"{value:.2g}"
    if key == "tokens_per_s":
        return f"{value:,.0f}"
    if key == "median_ms":
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def markdown(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(title for title, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        if row.get("error"):
            cells = [row["case"], row["method"], "failed: " + row["error"][:80]]
            cells += [""] * (len(columns) - 3)
        else:
            cells = [fmt(key, row.get(key)) for _, key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid(tokens: list[int], dims: list[int], vocabs: list[int], dtype: str) -> list[Case]:
    return [Case(t, d, v, dtype) for t in tokens for d in dims for v in vocabs]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, every method, on CPU")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per case (default: 3 on cpu, 20 on cuda)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (cuda)")
    parser.add_argument("--tokens", type=int, nargs="+", default=None)
    parser.add_argument("--dims", type=int, nargs="+", default=None)
    parser.add_argument("--vocabs", type=int, nargs="+", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def environment(device: str) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                           "cpu_count": os.cpu_count(), "device": device}
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        try:
            import triton

            env["triton"] = triton.__version__
        except ImportError:
            env["triton"] = None
    return env


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(cpu_child(json.loads(args.child))))
        return
    torch.set_grad_enabled(False)
    result: dict[str, Any] = {"command": " ".join(["python", *sys.argv])}
    if args.smoke:
        device, columns = "cpu", GPU_COLUMNS
        cases = grid(args.tokens or [70], args.dims or [40], args.vocabs or [300], "bfloat16")
        peak = matmul_peak_tflops("cpu", 256, repeats=3)
        rows = run_gpu(cases, "cpu", args.repeats or 2, 1, peak)
        result["correctness"] = correctness(cases[0], "cpu", 64)
    elif args.device == "cpu":
        device, columns, peak = "cpu", CPU_COLUMNS, None
        cases = grid(args.tokens or [4096], args.dims or [256, 512, 768],
                     args.vocabs or [8192, 32768, 50257], "float32")
        rows = run_cpu(cases, args.repeats or 3)
    else:
        device, columns = "cuda", GPU_COLUMNS
        cases = grid(args.tokens or [16384], args.dims or [768, 2048],
                     args.vocabs or [50257, 128256], "bfloat16")
        peak = matmul_peak_tflops("cuda", 8192)
        print(f"bf16 matmul peak (8192^3): {peak:.0f} TFLOP/s", file=sys.stderr)
        result["correctness"] = correctness(cases[0], "cuda", CHECK_TOKENS)
        print("correctness: " + json.dumps(result["correctness"]), file=sys.stderr, flush=True)

        def save_partial(rows: list[dict[str, Any]]) -> None:
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({**result, "partial": True, "rows": rows},
                                                indent=2))

        rows = run_gpu(cases, "cuda", args.repeats or 20, args.warmup, peak, save_partial)
        result["triton_configs"] = best_triton_configs()
    result.update(environment(device), matmul_peak_tflops=peak, rows=rows)
    print(markdown(rows, columns))
    if device == "cpu" and not args.smoke:
        print(f"\nmedian of {args.repeats or 3} calls after a {WARMUP_TOKENS_CPU}-token warm-up; "
              "peak MB = growth of ru_maxrss over the process's value with the inputs allocated")
    else:
        print(f"\nbf16 matmul peak measured here: {peak:.3g} TFLOP/s")
        print("correctness (max |err| / (|ref| + 1) vs float64): "
              + json.dumps(result["correctness"]["methods"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
