"""Dispatch between the Triton kernel and the chunked torch path, after checking the inputs once.

Both backends compute, for every token t with target y_t != ignore_index,
    z_v = cap(h_t . W_v + b_v),  cap(x) = s * tanh(x / s) when a soft-cap s is given,
    lse_t = log sum_v exp(z_v),  nll_t = lse_t - z_{y_t},
and nll_t = 0 for ignored tokens (as `F.cross_entropy(reduction="none")` does).
"""

from __future__ import annotations

import importlib.util

import torch

BACKENDS = ("auto", "triton", "torch")
FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _check(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
           bias: torch.Tensor | None, softcap: float | None, backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if hidden.dim() != 2 or weight.dim() != 2:
        raise ValueError(f"hidden must be [T, d] and weight [V, d]; got {tuple(hidden.shape)} "
                         f"and {tuple(weight.shape)}")
    if hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"hidden dim {hidden.shape[1]} != weight dim {weight.shape[1]}")
    if targets.shape != (hidden.shape[0],):
        raise ValueError(f"targets must be [T] = [{hidden.shape[0]}], got {tuple(targets.shape)}")
    if hidden.dtype not in FLOAT_DTYPES or weight.dtype not in FLOAT_DTYPES:
        raise TypeError(f"hidden and weight must be fp32, bf16 or fp16; got {hidden.dtype}, "
                        f"{weight.dtype}")
    if targets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"targets must be int64 or int32, got {targets.dtype}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must be [V] = [{weight.shape[0]}], got {tuple(bias.shape)}")
    devices = {t.device for t in (hidden, weight, targets, bias) if t is not None}
    if len(devices) > 1:
        raise ValueError(f"inputs must be on one device, got {sorted(map(str, devices))}")
    if bias is not None and bias.dtype not in FLOAT_DTYPES:
        raise TypeError(f"bias must be fp32, bf16 or fp16, got {bias.dtype}")
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be positive, got {softcap}")
    if weight.shape[0] < 1:
        raise ValueError("the vocabulary is empty")


def _check_targets(targets: torch.Tensor, vocab: int, ignore_index: int) -> None:
    valid = targets[targets != ignore_index]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= vocab):
        raise ValueError(f"targets must lie in [0, {vocab}) or equal ignore_index={ignore_index}")


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def _use_triton(hidden: torch.Tensor, backend: str) -> bool:
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs the triton package (pip install "
                               "'siftline[gpu]')")
        return True
    return backend == "auto" and hidden.is_cuda and triton_available()


def token_nll_lse(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    ignore_index: int = -100,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL and log-sum-exp, both fp32 `[T]` (see `token_nll`)."""
    _check(hidden, weight, targets, bias, softcap, backend)
    _check_targets(targets, weight.shape[0], ignore_index)
    if _use_triton(hidden, backend):
        from siftline.kernels.token_nll_triton import token_nll_triton

        return token_nll_triton(hidden, weight, targets, bias=bias, softcap=softcap,
                                ignore_index=ignore_index)
    from siftline.kernels.token_nll_torch import token_nll_torch

    return token_nll_torch(hidden, weight, targets, bias=bias, softcap=softcap,
                           ignore_index=ignore_index)


def token_nll(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    ignore_index: int = -100,
    backend: str = "auto",
) -> torch.Tensor:
    """fp32 per-token NLL `[T]` of `targets` under logits `hidden @ weight.T (+ bias)`.

    hidden: `[T, d]` final hidden states (fp32, bf16 or fp16); weight: `[V, d]` unembedding;
    targets: `[T]` token ids, `ignore_index` for positions that are not scored (NLL 0).
    """
    nll, _ = token_nll_lse(hidden, weight, targets, bias=bias, softcap=softcap,
                           ignore_index=ignore_index, backend=backend)
    return nll
