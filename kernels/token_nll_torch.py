"""The torch path: the same function as the Triton kernel, chunked over the vocabulary.

Memory stays bounded by `CHUNK_BYTES` of fp32 logits however large T and V are: each vocabulary
chunk's log-sum-exp (one fused torch kernel) is folded into a running one with `logaddexp` (an
online log-sum-exp), and the target logit is one row-wise dot product with the gathered rows.
Inputs are upcast to fp32 chunk by chunk, so bf16/fp16 weights never exist in fp32 whole.
"""

from __future__ import annotations

import torch

CHUNK_BYTES = 64 << 20


def _cap(logits: torch.Tensor, softcap: float | None) -> torch.Tensor:
    return logits if softcap is None else softcap * torch.tanh(logits / softcap)


def _logsumexp_(logits: torch.Tensor) -> torch.Tensor:
    """Row log-sum-exp that overwrites `logits` (ours, fresh): half the memory traffic of
    `torch.logsumexp`, which allocates temporaries."""
    row_max = logits.amax(dim=1, keepdim=True)
    row_max = torch.where(torch.isinf(row_max), torch.zeros_like(row_max), row_max)
    return row_max.squeeze(1) + logits.sub_(row_max).exp_().sum(dim=1).log()


def _chunks(n_tokens: int, vocab: int, dim: int, chunk_bytes: int) -> tuple[int, int]:
    """(token block, vocab block) whose fp32 logits, and fp32 copies of the token block's
    hidden states and target rows, each fit in `chunk_bytes`."""
    v_block = min(vocab, max(256, chunk_bytes // (4 * max(n_tokens, 1))))
    t_block = max(1, min(n_tokens, chunk_bytes // (4 * v_block), chunk_bytes // (4 * dim)))
    return t_block, v_block


@torch.inference_mode()
def token_nll_torch(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    ignore_index: int = -100,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    n_tokens, vocab = hidden.shape[0], weight.shape[0]
    nll = torch.zeros(n_tokens, dtype=torch.float32, device=hidden.device)
    lse = torch.zeros(n_tokens, dtype=torch.float32, device=hidden.device)
    if n_tokens == 0:
        return nll, lse
    t_block, v_block = _chunks(n_tokens, vocab, max(hidden.shape[1], 1), chunk_bytes)
    ignored = targets == ignore_index
    safe_targets = torch.where(ignored, torch.zeros_like(targets), targets).long()
    for t0 in range(0, n_tokens, t_block):
        h = hidden[t0:t0 + t_block].float()
        block_lse = torch.full((h.shape[0],), float("-inf"), device=h.device)
        for v0 in range(0, vocab, v_block):
            logits = h @ weight[v0:v0 + v_block].float().T
            if bias is not None:
                logits += bias[v0:v0 + v_block].float()
            if softcap is not None:
                logits = logits.div_(softcap).tanh_().mul_(softcap)
            block_lse = torch.logaddexp(block_lse, _logsumexp_(logits))
        rows = safe_targets[t0:t0 + t_block]
        target_logit = (h * weight[rows].float()).sum(dim=1)
        if bias is not None:
            target_logit += bias[rows].float()
        target_logit = _cap(target_logit, softcap)
        lse[t0:t0 + t_block] = block_lse
        nll[t0:t0 + t_block] = torch.where(ignored[t0:t0 + t_block], 0.0,
                                           block_lse - target_logit)
    return nll, lse
