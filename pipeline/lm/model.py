"""A small GPT-style causal LM whose forward returns final hidden states, not logits.

Pre-norm blocks (RMSNorm), rotary position embeddings, causal scaled-dot-product attention and a
GELU MLP. The loss head is kept apart (`head()`), so training takes logits from it while scoring
hands the hidden states and the unembedding to `siftline.kernels.token_nll`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from siftline.lm.config import ModelConfig


@dataclass(frozen=True)
class Head:
    """The unembedding a loss kernel needs: logits = cap(hidden @ weight.T + bias)."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None
    softcap: float | None = None


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_tables(head_dim: int, length: int, theta: float,
                  device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin `[length, head_dim]`, each frequency repeated for both halves of the head."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(length, device=device).float(), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (i, i + D/2) of the last dim (the "rotate half" layout, fewer copies than
    interleaved pairs); x is [B, H, T, D], cos/sin are [T, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos + rotated * sin).type_as(x)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.up = nn.Linear(config.d_model, config.ff_width, bias=False)
        self.down = nn.Linear(config.ff_width, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(dim, dim=-1)
        shape = (batch, length, self.n_heads, dim // self.n_heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attn.transpose(1, 2).reshape(batch, length, dim))
        return x + self.down(F.gelu(self.up(self.mlp_norm(x))))


class CausalLM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = RMSNorm(config.d_model, config.norm_eps)
        self.unembed = (None if config.tie_embeddings
                        else nn.Linear(config.d_model, config.vocab_size, bias=False))
        head_dim = config.d_model // config.n_heads
        cos, sin = rotary_tables(head_dim, config.context_length, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2's scaled init of residual projections
            std = 0.02 / math.sqrt(2 * config.n_layers)
            nn.init.normal_(block.proj.weight, std=std)
            nn.init.normal_(block.down.weight, std=std)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    @property
    def context_length(self) -> int:
        return self.config.context_length

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Final (normed) hidden states `[B, T, d]` for token ids `[B, T]`, T <= context."""
        length = input_ids.shape[1]
        if length > self.config.context_length:
            raise ValueError(f"sequence of {length} tokens exceeds the context "
                             f"{self.config.context_length}")
        x = self.embed(input_ids)
        cos, sin = self.rope_cos[:length], self.rope_sin[:length]
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.final_norm(x)

    def head(self) -> Head:
        weight = self.embed.weight if self.unembed is None else self.unembed.weight
        return Head(weight)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Materialised logits, for training only (scoring uses the fused kernel)."""
        return hidden @ self.head().weight.T
