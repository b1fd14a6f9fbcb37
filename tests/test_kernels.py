"""Per-token NLL kernels (`siftline.kernels.token_nll`) against a float64 reference.

Reference: logits materialised in float64 from the very inputs the kernel sees (bf16/fp16
inputs are rounded first, then upcast exactly), soft-capped in float64, then
`F.cross_entropy(reduction="none")` and `torch.logsumexp`.

Accuracy criterion, for both nll and lse, token by token:
    |got - ref| <= rtol * (|ref| + 1),   rtol = 1e-5 for fp32 inputs, 2e-2 for bf16/fp16.
The +1 nat floor exists because nll = lse - z_target cancels in fp32 when the NLL is tiny, so a
purely relative bound would demand more than fp32 can give. Ignored targets must give exactly 0.

The Triton kernel runs on CPU under TRITON_INTERPRET=1. Triton reads that variable when a kernel
is decorated, and pytest imports every test module into one process, so the Triton cases run in
one subprocess (all batched, to pay triton's import once) that reports its errors as JSON; the
main process never imports triton. Tests marked `gpu` run the compiled kernel on CUDA.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from siftline.kernels import token_nll, token_nll_lse

ROOT = Path(__file__).resolve().parents[1]
RTOL = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-2}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
HAS_TRITON = importlib.util.find_spec("triton") is not None
NO_TRITON = "triton is not installed (pip install 'siftline[gpu]')"

# name -> case. T, V, d are chosen not to divide the interpreter's blocks (16, 64, 32).
# `ignore`: every k-th target is ignore_index ("all": every one). `blocks`: interpreter block
# override (only the 50k vocabulary needs it, to stay fast). `splits`: forced vocab splits.
# `torch_chunk_bytes`: a chunk size for the torch path, so that a whole chunk is -inf.
CASES: dict[str, dict[str, Any]] = {
    "odd_shapes": {"T": 37, "V": 1003, "d": 50, "ignore": 3},
    "bias": {"T": 37, "V": 515, "d": 33, "bias": True, "ignore": 4},
    "softcap": {"T": 21, "V": 300, "d": 40, "softcap": 5.0, "scale": 3.0},
    "bias_softcap_large_logits": {"T": 19, "V": 700, "d": 64, "bias": True, "softcap": 30.0,
                                  "scale": 20.0},
    "large_logits": {"T": 17, "V": 257, "d": 24, "scale": 40.0},
    "tiny_softcap": {"T": 16, "V": 130, "d": 16, "softcap": 1.0, "scale": 0.05},
    "vocab_2": {"T": 9, "V": 2, "d": 3},
    "one_token": {"T": 1, "V": 70, "d": 5},
    "no_tokens": {"T": 0, "V": 70, "d": 5},
    "zero_dim": {"T": 5, "V": 70, "d": 0, "bias": True},
    "all_ignored": {"T": 12, "V": 90, "d": 8, "ignore": "all"},
    "ignore_index_0": {"T": 30, "V": 90, "d": 8, "ignore": 2, "ignore_index": 0},
    "int32_targets": {"T": 25, "V": 200, "d": 20, "int32": True, "ignore": 5},
    "forced_splits": {"T": 20, "V": 1000, "d": 20, "splits": 3, "bias": True},
    "non_contiguous": {"T": 23, "V": 150, "d": 36, "transposed": True},
    "neg_inf_bias_block": {"T": 8, "V": 600, "d": 12, "inf_bias": 256, "splits": 2,
                           "torch_chunk_bytes": 4 * 8 * 256},
    "vocab_50k": {"T": 3, "V": 50257, "d": 16, "blocks": {"BLOCK_V": 1024}},
    "bf16": {"T": 37, "V": 1003, "d": 50, "dtype": "bf16", "ignore": 3},
    "bf16_bias_softcap": {"T": 21, "V": 400, "d": 70, "dtype": "bf16", "bias": True,
                          "softcap": 15.0, "scale": 5.0},
    "fp16": {"T": 29, "V": 333, "d": 48, "dtype": "fp16", "bias": True},
    "mixed_bf16_fp32": {"T": 18, "V": 222, "d": 30, "dtype": "bf16", "weight_dtype": "fp32"},
    # The kernel's load and target variants (`variant`; the torch path ignores it). The default
    # is unmasked loads and the target logit gathered outside the tile loop: test the others.
    "masked_loads": {"T": 37, "V": 1003, "d": 50, "ignore": 3, "variant": {"MASK_FREE": False}},
    "mask_free_even_d": {"T": 37, "V": 515, "d": 64, "bias": True, "splits": 2,
                         "variant": {"MASK_FREE": True}},
    "target_in_loop": {"T": 21, "V": 400, "d": 70, "dtype": "bf16", "bias": True,
                       "softcap": 15.0, "scale": 5.0, "ignore": 4,
                       "variant": {"GATHER_TARGET": True}},
    "masked_target_in_loop_inf_bias": {"T": 8, "V": 600, "d": 32, "inf_bias": 256, "splits": 2,
                                       "variant": {"MASK_FREE": False, "GATHER_TARGET": True}},
}


def make_inputs(case: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Deterministic inputs for a case: hidden, weight, targets and the keyword arguments."""
    gen = torch.Generator().manual_seed(1234 + case["T"] * 7 + case["V"])
    n, vocab, dim = case["T"], case["V"], case["d"]
    dtype = DTYPES[case.get("dtype", "fp32")]
    scale = case.get("scale", 1.0) / max(dim, 1) ** 0.5
    hidden = torch.randn(n, dim, generator=gen).to(dtype)
    if case.get("transposed"):
        hidden = torch.randn(dim, n, generator=gen).to(dtype).T
    weight = (torch.randn(vocab, dim, generator=gen) * scale).to(
        DTYPES[case.get("weight_dtype", case.get("dtype", "fp32"))])
    ignore_index = case.get("ignore_index", -100)
    targets = torch.randint(0, vocab, (n,), generator=gen)
    ignore = case.get("ignore")
    if ignore == "all":
        targets[:] = ignore_index
    elif ignore:
        targets[::ignore] = ignore_index
    if case.get("int32"):
        targets = targets.int()
    bias = torch.randn(vocab, generator=gen).to(dtype) if case.get("bias") else None
    if case.get("inf_bias"):
        bias = torch.zeros(vocab, dtype=dtype)
        bias[: case["inf_bias"]] = float("-inf")
        targets = torch.randint(case["inf_bias"], vocab, (n,), generator=gen)
    to = {"device": device}
    return {"hidden": hidden.to(**to), "weight": weight.to(**to), "targets": targets.to(**to),
            "bias": None if bias is None else bias.to(**to), "softcap": case.get("softcap"),
            "ignore_index": ignore_index}


def reference(inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 (nll, lse) from materialised logits of the same (possibly rounded) inputs."""
    logits = inputs["hidden"].double() @ inputs["weight"].double().T
    if inputs["bias"] is not None:
        logits = logits + inputs["bias"].double()
    cap = inputs["softcap"]
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    nll = F.cross_entropy(logits, inputs["targets"].long(), reduction="none",
                          ignore_index=inputs["ignore_index"])
    return nll, torch.logsumexp(logits, dim=1)


def error_report(inputs: dict[str, Any], nll: torch.Tensor, lse: torch.Tensor) -> dict[str, Any]:
    """Worst error as a fraction of the allowed one (<= 1 passes), plus the exact checks."""
    ref_nll, ref_lse = reference(inputs)
    rtol = RTOL[torch.promote_types(inputs["hidden"].dtype, inputs["weight"].dtype)]
    ignored = (inputs["targets"] == inputs["ignore_index"]).cpu()
    nll, lse = nll.cpu(), lse.cpu()
    ref_nll, ref_lse = ref_nll.cpu(), ref_lse.cpu()

    def worst(got: torch.Tensor, ref: torch.Tensor) -> float:
        if got.numel() == 0:
            return 0.0
        ratio = (got.double() - ref).abs() / (rtol * (ref.abs() + 1))
        return float(torch.nan_to_num(ratio, nan=float("inf")).max())

    return {"nll": worst(nll, ref_nll), "lse": worst(lse, ref_lse),
            "dtypes": [str(nll.dtype), str(lse.dtype)], "shape": list(nll.shape),
            "ignored_zero": bool((nll[ignored] == 0).all())}


def check_report(report: dict[str, Any], n_tokens: int) -> None:
    assert report["dtypes"] == ["torch.float32", "torch.float32"]
    assert report["shape"] == [n_tokens]
    assert report["ignored_zero"], "ignored targets must give an NLL of exactly 0"
    assert report["nll"] <= 1.0, f"nll error is {report['nll']:.3g} x the tolerance"
    assert report["lse"] <= 1.0, f"lse error is {report['lse']:.3g} x the tolerance"


# ---------------------------------------------------------------- torch path, in process

@pytest.mark.parametrize("name", list(CASES))
def test_torch_path_matches_float64(name: str) -> None:
    case = CASES[name]
    from siftline.kernels.token_nll_torch import token_nll_torch

    inputs = make_inputs(case)
    kwargs = {k: inputs[k] for k in ("bias", "softcap", "ignore_index")}
    if "torch_chunk_bytes" in case:
        nll, lse = token_nll_torch(inputs["hidden"], inputs["weight"], inputs["targets"],
                                   chunk_bytes=case["torch_chunk_bytes"], **kwargs)
    else:
        nll, lse = token_nll_lse(inputs["hidden"], inputs["weight"], inputs["targets"],
                                 backend="torch", **kwargs)
    check_report(error_report(inputs, nll, lse), case["T"])


def test_torch_path_small_chunks() -> None:
    """Many token and vocabulary chunks: the online log-sum-exp across chunk boundaries."""
    from siftline.kernels.token_nll_torch import token_nll_torch

    inputs = make_inputs({"T": 50, "V": 1100, "d": 24, "bias": True, "ignore": 3})
    nll, lse = token_nll_torch(inputs["hidden"], inputs["weight"], inputs["targets"],
                               bias=inputs["bias"], chunk_bytes=4 * 256 * 7)
    check_report(error_report(inputs, nll, lse), 50)


def test_auto_backend_on_cpu_matches_token_nll_lse() -> None:
    inputs = make_inputs(CASES["bias"])
    args = (inputs["hidden"], inputs["weight"], inputs["targets"])
    nll = token_nll(*args, bias=inputs["bias"])
    expected, _ = token_nll_lse(*args, bias=inputs["bias"], backend="torch")
    assert torch.equal(nll, expected)


# ---------------------------------------------------------------- input validation

def _valid() -> dict[str, Any]:
    return {"hidden": torch.randn(4, 8), "weight": torch.randn(10, 8),
            "targets": torch.tensor([0, 3, -100, 9])}


def _call(**changes: Any) -> torch.Tensor:
    args = _valid()
    kwargs = {k: changes.pop(k) for k in list(changes) if k not in args}
    args.update(changes)
    return token_nll(args["hidden"], args["weight"], args["targets"], **kwargs)


@pytest.mark.parametrize(("changes", "error", "match"), [
    ({"hidden": torch.randn(4)}, ValueError, "hidden must be"),
    ({"weight": torch.randn(10, 8, 1)}, ValueError, "hidden must be"),
    ({"weight": torch.randn(10, 7)}, ValueError, "hidden dim 8 != weight dim 7"),
    ({"targets": torch.tensor([0, 1, 2])}, ValueError, "targets must be"),
    ({"targets": torch.zeros(4, 1, dtype=torch.long)}, ValueError, "targets must be"),
    ({"targets": torch.tensor([0, 10, 1, 2])}, ValueError, "targets must lie in"),
    ({"targets": torch.tensor([0, -1, 1, 2])}, ValueError, "targets must lie in"),
    ({"targets": torch.tensor([0.0, 1, 2, 3])}, TypeError, "targets must be int64"),
    ({"hidden": torch.zeros(4, 8, dtype=torch.int32)}, TypeError, "fp32, bf16 or fp16"),
    ({"hidden": torch.randn(4, 8).double()}, TypeError, "fp32, bf16 or fp16"),
    ({"bias": torch.randn(9)}, ValueError, "bias must be"),
    ({"softcap": 0.0}, ValueError, "softcap must be positive"),
    ({"softcap": -1.0}, ValueError, "softcap must be positive"),
    ({"backend": "cuda"}, ValueError, "backend must be one of"),
    ({"weight": torch.randn(0, 8), "targets": torch.full((4,), -100)}, ValueError,
     "vocabulary is empty"),
])
def test_dispatcher_rejects_bad_inputs(changes: dict[str, Any], error: type[Exception],
                                       match: str) -> None:
    with pytest.raises(error, match=match):
        _call(**changes)


def test_ignore_index_may_lie_outside_the_vocabulary() -> None:
    nll = _call(targets=torch.tensor([0, 3, -7, 9]), ignore_index=-7)
    assert nll[2] == 0 and (nll[[0, 1, 3]] > 0).all()


# ---------------------------------------------------------------- Triton, interpreter subprocess

def _triton_case(name: str) -> dict[str, Any]:
    """Run one case through the Triton backend (in the interpreter subprocess)."""
    import siftline.kernels.token_nll_triton as kt

    case = CASES[name]
    saved = dict(kt.INTERPRET_BLOCKS)
    kt.INTERPRET_BLOCKS.update(case.get("blocks", {}))
    try:
        inputs = make_inputs(case)
        kwargs = {k: inputs[k] for k in ("bias", "softcap", "ignore_index")}
        args = (inputs["hidden"], inputs["weight"], inputs["targets"])
        if "splits" in case or "variant" in case:
            nll, lse = kt.token_nll_triton(*args, vocab_splits=case.get("splits"),
                                           variant=case.get("variant"), **kwargs)
        else:
            nll, lse = token_nll_lse(*args, backend="triton", **kwargs)
        return error_report(inputs, nll, lse)
    finally:
        kt.INTERPRET_BLOCKS.clear()
        kt.INTERPRET_BLOCKS.update(saved)


def run_triton_cases_here() -> None:
    """Subprocess entry point: every case, results as one JSON object on stdout.

    Also records, before the kernel module loads, whether importing `kernels` (done by this
    module's imports) pulled in triton: it must not, so that the torch path works without it.
    """
    meta = {"triton_imported_by_kernels": "triton" in sys.modules}
    import siftline.kernels.token_nll_triton as kt

    meta["interpreted"] = kt.INTERPRETED
    results: dict[str, Any] = {"_meta": meta}
    for name in CASES:
        try:
            results[name] = _triton_case(name)
        except Exception as exc:  # reported to the parent, which fails that case
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print("RESULTS " + json.dumps(results))


@pytest.fixture(scope="module")
def triton_results() -> dict[str, Any]:
    if not HAS_TRITON:
        pytest.skip(NO_TRITON)
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    code = "import test_kernels; test_kernels.run_triton_cases_here()"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "tests", env=env,
                            capture_output=True, text=True, timeout=600)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS "):])


def test_triton_runs_under_the_interpreter(triton_results: dict[str, Any]) -> None:
    assert triton_results["_meta"]["interpreted"]


def test_importing_kernels_does_not_import_triton(triton_results: dict[str, Any]) -> None:
    """Checked in the clean subprocess: the torch path must load where triton is absent."""
    assert not triton_results["_meta"]["triton_imported_by_kernels"]


@pytest.mark.parametrize("name", list(CASES))
def test_triton_interpreter_matches_float64(name: str, triton_results: dict[str, Any]) -> None:
    report = triton_results[name]
    assert "error" not in report, report.get("error")
    check_report(report, CASES[name]["T"])


# ---------------------------------------------------------------- GPU

HAS_CUDA = torch.cuda.is_available()

GPU_CASES = {
    "bf16_gpt2": {"T": 4096, "V": 50257, "d": 768, "dtype": "bf16", "ignore": 7},
    "bf16_llama3_vocab": {"T": 2048, "V": 128256, "d": 2048, "dtype": "bf16"},
    "bf16_bias_softcap": {"T": 1000, "V": 32003, "d": 1000, "dtype": "bf16", "bias": True,
                          "softcap": 30.0, "scale": 10.0},
    "fp32_ieee": {"T": 777, "V": 10007, "d": 513, "ignore": 5},
    "small_T_split": {"T": 3, "V": 128256, "d": 256, "dtype": "bf16"},
    "fp16": {"T": 513, "V": 5000, "d": 96, "dtype": "fp16", "bias": True},
}


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
@pytest.mark.skipif(not HAS_TRITON, reason=NO_TRITON)
@pytest.mark.parametrize("name", list(GPU_CASES))
def test_triton_gpu_matches_float64(name: str) -> None:
    case = GPU_CASES[name]
    inputs = make_inputs(case, device="cuda")
    nll, lse = token_nll_lse(inputs["hidden"], inputs["weight"], inputs["targets"],
                             bias=inputs["bias"], softcap=inputs["softcap"],
                             ignore_index=inputs["ignore_index"], backend="triton")
    check_report(error_report(inputs, nll, lse), case["T"])


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
@pytest.mark.skipif(not HAS_TRITON, reason=NO_TRITON)
def test_triton_gpu_agrees_with_torch_path_and_auto_picks_triton() -> None:
    inputs = make_inputs({"T": 8192, "V": 50257, "d": 1024, "dtype": "bf16", "ignore": 9},
                         device="cuda")
    args = (inputs["hidden"], inputs["weight"], inputs["targets"])
    fused = token_nll(*args, backend="triton")
    chunked = token_nll(*args, backend="torch")
    assert torch.equal(token_nll(*args), fused)  # auto takes triton on CUDA
    assert ((fused - chunked).abs() <= 1e-4 * (chunked.abs() + 1)).all()
