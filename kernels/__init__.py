"""Per-token loss kernels: fused linear + cross-entropy, forward only.

`token_nll` is the public entry point (a stable contract): it takes final hidden states, the
unembedding and the targets, and returns fp32 per-token negative log-likelihood without ever
holding the full `[T, V]` logits. `backend="auto"` takes the Triton kernel on a CUDA device when
Triton is installed and the torch path otherwise.
"""

from siftline.kernels.token_nll import BACKENDS, token_nll, token_nll_lse

__all__ = ["BACKENDS", "token_nll", "token_nll_lse"]
