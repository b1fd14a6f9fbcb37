"""The Triton kernel: fused unembedding + log-sum-exp + target gather, forward only.

Why fused: scoring needs only the per-token NLL, yet the plain computation writes `[T, V]`
logits to device memory (several GB for a 128k vocabulary) and reads them back twice. Here each
program owns a block of tokens and a range of the vocabulary; it walks that range in `BLOCK_V`
steps, computes the logits of one `[BLOCK_T, BLOCK_V]` tile with `tl.dot` over `BLOCK_D` slices
of `d` (fp32 accumulation), and folds the tile into a running (max, sum of exponentials) and the
target logit, all in registers (the design of Cut Cross-Entropy). Logits never leave the chip.

Splitting the vocabulary over several programs keeps the GPU busy when T is small; the partial
(max, sum, target logit) of each split are combined in torch, which costs O(splits * T).

Importing this module imports triton, so `siftline.kernels.token_nll` imports it only for the triton
backend. The kernel runs on CUDA tensors, or on CPU tensors when TRITON_INTERPRET=1 was set
before this module (and triton) were first imported: triton reads the variable when `@triton.jit`
runs. Under the interpreter the blocks are small and fixed; on a GPU they are autotuned.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

# Below this |x|, tanh(x) comes from its Taylor series: (1 - e^{-2x}) / (1 + e^{-2x}) cancels.
TANH_SERIES_BELOW = tl.constexpr(0.2)
# Blocks under the interpreter: small enough to keep tests fast, at tl.dot's minimum of 16.
INTERPRET_BLOCKS = {"BLOCK_T": 16, "BLOCK_V": 64, "BLOCK_D": 32}
# Programs the interpreter pretends to have, so that small tests exercise the vocabulary split.
INTERPRET_SMS = 4
# Each split covers a multiple of this many vocabulary entries (>= every BLOCK_V in the tiles).
SPLIT_ALIGN = 256
# A split is never smaller than this many alignment units: smaller ones waste the combine.
MIN_SPLIT_UNITS = 4


@triton.jit
def _tanh(x):
    """tanh from one exp, safe for every x: e = exp(-2|x|) is in (0, 1], never overflows."""
    a = tl.abs(x)
    e = tl.exp(-2.0 * a)
    far = (1.0 - e) / (1.0 + e)
    a2 = a * a
    near = a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0))))
    t = tl.where(a < TANH_SERIES_BELOW, near, far)
    return tl.where(x < 0.0, -t, t)


@triton.jit
def _partials_kernel(
    h_ptr, w_ptr, b_ptr, tgt_ptr, max_ptr, sum_ptr, zt_ptr,
    T, V, D, stride_h, stride_w, v_per_split, softcap,
    HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr, MASK_FREE: tl.constexpr, EVEN_D: tl.constexpr,
    GATHER_TARGET: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Per (token block, vocab split): running max, sum of exp(z - max), and z_target.

    MASK_FREE loads clamped rows (token T-1, vocab entry V-1) instead of masking them, and the
    logits of those padding columns are set to -inf after the dot; with EVEN_D (D a multiple of
    BLOCK_D) the loads carry no mask at all. GATHER_TARGET=False leaves z_target to the caller.
    """
    pid_t = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    t_ok = offs_t < T
    tgt = tl.load(tgt_ptr + offs_t, mask=t_ok, other=-1)
    if MASK_FREE:
        h_rows = h_ptr + tl.minimum(offs_t, T - 1).to(tl.int64)[:, None] * stride_h
    else:
        h_rows = h_ptr + offs_t.to(tl.int64)[:, None] * stride_h
    v_start = pid_s * v_per_split
    v_end = tl.minimum(v_start + v_per_split, V)

    run_max = tl.full([BLOCK_T], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_T], tl.float32)
    z_tgt = tl.zeros([BLOCK_T], tl.float32)
    for v0 in range(v_start, v_end, BLOCK_V):
        offs_v = v0 + tl.arange(0, BLOCK_V)
        v_ok = offs_v < v_end
        if MASK_FREE:
            w_cols = w_ptr + tl.minimum(offs_v, V - 1).to(tl.int64)[None, :] * stride_w
        else:
            w_cols = w_ptr + offs_v.to(tl.int64)[None, :] * stride_w
        acc = tl.zeros([BLOCK_T, BLOCK_V], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + tl.arange(0, BLOCK_D)
            d_ok = offs_d < D
            if MASK_FREE and EVEN_D:
                h = tl.load(h_rows + offs_d[None, :])
                w = tl.load(w_cols + offs_d[:, None])
            elif MASK_FREE:
                h = tl.load(h_rows + offs_d[None, :], mask=d_ok[None, :], other=0.0)
                w = tl.load(w_cols + offs_d[:, None], mask=d_ok[:, None], other=0.0)
            else:
                h = tl.load(h_rows + offs_d[None, :], mask=t_ok[:, None] & d_ok[None, :],
                            other=0.0)
                w = tl.load(w_cols + offs_d[:, None], mask=d_ok[:, None] & v_ok[None, :],
                            other=0.0)
            if DOT_FP32:  # exact upcast; the interpreter's tl.dot mishandles bf16
                h = h.to(tl.float32)
                w = w.to(tl.float32)
            acc = tl.dot(h, w, acc, input_precision=PRECISION)
        if HAS_BIAS:
            acc += tl.load(b_ptr + offs_v, mask=v_ok, other=0.0)[None, :]
        if HAS_SOFTCAP:
            acc = softcap * _tanh(acc / softcap)
        z = tl.where(v_ok[None, :], acc, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(z, axis=1))
        # A row whose logits are all -inf so far (a -inf bias masks them) shifts by 0, not -inf.
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        run_sum = run_sum * tl.exp(run_max - shift) + tl.sum(tl.exp(z - shift[:, None]), axis=1)
        run_max = new_max
        if GATHER_TARGET:
            z_tgt += tl.sum(tl.where(offs_v[None, :] == tgt[:, None], z, 0.0), axis=1)

    out = pid_s * T + offs_t
    tl.store(max_ptr + out, run_max, mask=t_ok)
    tl.store(sum_ptr + out, run_sum, mask=t_ok)
    tl.store(zt_ptr + out, z_tgt, mask=t_ok)


INTERPRETED = isinstance(_partials_kernel, InterpretedFunction)


# (BLOCK_T, BLOCK_V, BLOCK_D, num_warps, num_stages). From a sweep on an H200 (triton 3.6,
# scripts/tune_token_nll.py, BENCHMARKS.md): 128 x 256 tiles lead at d = 768 and 2048; smaller
# ones stay for bias and softcap, where the wide tiles spill registers. fp32 takes the ieee (FMA)
# path for exact fp32 products, where only small tiles avoid spills.
HALF_TILES = [(128, 256, 64, 8, 3), (128, 256, 64, 8, 4), (128, 256, 32, 8, 4),
              (128, 128, 64, 8, 4), (256, 128, 64, 8, 3), (64, 256, 64, 8, 3)]
FP32_TILES = [(64, 64, 32, 4, 2), (32, 64, 32, 4, 2), (64, 64, 32, 8, 2)]


def _configs(tiles: list[tuple[int, int, int, int, int]]) -> list[triton.Config]:
    """Autotune candidates; any that do not fit a smaller GPU are dropped (OutOfResources)."""
    return [triton.Config({"BLOCK_T": bt, "BLOCK_V": bv, "BLOCK_D": bd}, num_warps=w,
                          num_stages=s) for bt, bv, bd, w, s in tiles]


def _autotuned(tiles: list[tuple[int, int, int, int, int]]) -> triton.runtime.Autotuner | None:
    if INTERPRETED:
        return None
    even_d = triton.heuristics({"EVEN_D": lambda args: args["D"] % args["BLOCK_D"] == 0})
    return triton.autotune(configs=_configs(tiles), key=["D", "V"])(even_d(_partials_kernel))


# Two tuners over the same kernel: the tile candidates differ by input dtype.
TUNED = {"half": _autotuned(HALF_TILES), "fp32": _autotuned(FP32_TILES)}
# How the kernel loads and where the target logit comes from (see `_partials_kernel`).
# Both measured faster on an H200 (BENCHMARKS.md): unmasked loads, and the target logit from a
# separate gather instead of a compare-and-sum over every tile.
VARIANT = {"MASK_FREE": True, "GATHER_TARGET": False}


def _common_dtype(hidden: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """Both operands of tl.dot need one dtype; promote the narrower (fp32 wins)."""
    return hidden.dtype if hidden.dtype == weight.dtype else torch.promote_types(
        hidden.dtype, weight.dtype)


def _split_plan(n_tokens: int, vocab: int, n_sms: int, block_t: int, align: int,
                splits: int | None) -> tuple[int, int]:
    """(number of vocab splits, vocab entries per split), each split a multiple of `align`.

    Enough splits for about two programs per SM when the token blocks alone are too few.
    """
    if splits is None:
        token_blocks = math.ceil(n_tokens / block_t)
        splits = max(1, min(math.ceil(2 * n_sms / token_blocks),
                            math.ceil(vocab / (MIN_SPLIT_UNITS * align))))
    per_split = math.ceil(math.ceil(vocab / max(1, splits)) / align) * align
    return math.ceil(vocab / per_split), per_split


def _combine(run_max: torch.Tensor, run_sum: torch.Tensor, z_tgt: torch.Tensor,
             ignored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the [splits, T] partials into (nll, lse), both fp32 [T]."""
    top = run_max.max(dim=0).values
    shift = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    total = (run_sum * torch.exp(run_max - shift)).sum(dim=0)
    lse = shift + torch.log(total)
    nll = torch.where(ignored, torch.zeros_like(lse), lse - z_tgt.sum(dim=0))
    return nll, lse


def _check_devices(hidden: torch.Tensor, *others: torch.Tensor | None) -> None:
    for other in others:
        if other is not None and other.device != hidden.device:
            raise ValueError(f"all inputs must be on {hidden.device}, got one on {other.device}")
    if not hidden.is_cuda and not INTERPRETED:
        raise RuntimeError("the Triton kernel needs CUDA tensors; for CPU tensors set "
                           "TRITON_INTERPRET=1 before importing triton, or use backend='torch'")


def _target_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   targets: torch.Tensor, softcap: float | None, chunk: int = 2048) -> torch.Tensor:
    """fp32 logit of each token's target (any value where the target is ignored): a gather and a
    row-wise dot, O(T * d) work, in token chunks so the fp32 copies stay small."""
    safe = targets.clamp(0, weight.shape[0] - 1)
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk):
        rows = safe[start:start + chunk]
        z = (hidden[start:start + chunk].float() * weight[rows].float()).sum(dim=1)
        if bias is not None:
            z += bias[rows]
        if softcap is not None:
            z = softcap * torch.tanh(z / softcap)
        out[start:start + chunk] = z
    return out


def _launch(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            targets: torch.Tensor, softcap: float | None, vocab_splits: int | None,
            config: dict | None = None, variant: dict | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Partials `[splits, T]` each. `config` (BLOCK_T/V/D, num_warps, num_stages) replaces the
    autotuner and `variant` the module's VARIANT: the tuning script compares both."""
    n_tokens, dim = hidden.shape
    vocab = weight.shape[0]
    variant = {**VARIANT, **(variant or {})}
    if INTERPRETED:
        config = config or INTERPRET_BLOCKS
        n_sms, block_t, align = INTERPRET_SMS, config["BLOCK_T"], config["BLOCK_V"]
    else:  # BLOCK_T is autotuned; the typical choice is close enough for the plan
        n_sms = torch.cuda.get_device_properties(hidden.device).multi_processor_count
        block_t = config["BLOCK_T"] if config else (64 if hidden.dtype == torch.float32 else 128)
        align = max(SPLIT_ALIGN, config["BLOCK_V"]) if config else SPLIT_ALIGN
    splits, per_split = _split_plan(n_tokens, vocab, n_sms, block_t, align, vocab_splits)
    partials = torch.empty((3, splits, n_tokens), dtype=torch.float32, device=hidden.device)
    precision = "ieee" if hidden.dtype == torch.float32 else "tf32"
    args = (hidden, weight, bias if bias is not None else hidden, targets,
            partials[0], partials[1], partials[2], n_tokens, vocab, dim,
            hidden.stride(0), weight.stride(0), per_split, float(softcap or 1.0))
    flags = {"HAS_BIAS": bias is not None, "HAS_SOFTCAP": softcap is not None,
             "PRECISION": precision, "DOT_FP32": INTERPRETED, **variant}
    if config is not None:
        grid = (triton.cdiv(n_tokens, config["BLOCK_T"]), splits)
        _partials_kernel[grid](*args, **flags, EVEN_D=dim % config["BLOCK_D"] == 0, **config)
    else:
        def grid_fn(meta: dict) -> tuple[int, int]:
            return triton.cdiv(n_tokens, meta["BLOCK_T"]), splits

        TUNED["fp32" if hidden.dtype == torch.float32 else "half"][grid_fn](*args, **flags)
    if not variant["GATHER_TARGET"]:
        partials[2, 0] = _target_logits(hidden, weight, bias, targets, softcap)
    return partials[0], partials[1], partials[2]


@torch.inference_mode()
def token_nll_triton(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    ignore_index: int = -100,
    vocab_splits: int | None = None,
    config: dict | None = None,
    variant: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 (nll [T], lse [T]) with the semantics of `token_nll_torch`.

    Shapes and target ranges are checked by `siftline.kernels.token_nll`; `vocab_splits` forces the
    number of vocabulary splits (tests use it to exercise the combine step); `config` and
    `variant` fix the tiles and the kernel variant (see `_launch`).
    """
    _check_devices(hidden, weight, targets, bias)
    n_tokens = hidden.shape[0]
    if n_tokens == 0:
        empty = torch.zeros(0, dtype=torch.float32, device=hidden.device)
        return empty, empty.clone()
    dtype = _common_dtype(hidden, weight)
    hidden = hidden.to(dtype).contiguous()
    weight = weight.to(dtype).contiguous()
    bias = None if bias is None else bias.to(torch.float32).contiguous()
    targets = targets.contiguous()
    with torch.cuda.device(hidden.device) if hidden.is_cuda else nullcontext():
        run_max, run_sum, z_tgt = _launch(hidden, weight, bias, targets, softcap, vocab_splits,
                                          config, variant)
    return _combine(run_max, run_sum, z_tgt, targets == ignore_index)

