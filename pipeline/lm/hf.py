"""Hugging Face causal LMs from a local folder, scored through the same fused loss kernel.

The backbone (`model.<base_model_prefix>`) gives final hidden states after the last norm, and the
output embedding (plus its bias, and Gemma-2's final logit soft-cap) is the head, so the `[T, V]`
logits are never built. Models that rescale logits another way are refused rather than mis-scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.lm.model import Head
from pipeline.lm.tokenizer import Tokenizer

UNSUPPORTED_SCALES = ("logit_scale", "logits_scaling", "output_multiplier_scale")


@dataclass
class HFCausalLM:
    model: Any  # transformers PreTrainedModel
    tokenizer: Tokenizer
    device: torch.device
    context_length: int

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone = getattr(self.model, self.model.base_model_prefix)
        return backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def head(self) -> Head:
        out = self.model.get_output_embeddings()
        bias = getattr(out, "bias", None)
        softcap = getattr(self.model.config, "final_logit_softcapping", None)
        return Head(out.weight, bias, float(softcap) if softcap else None)


def _context_length(config: Any) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError("cannot tell the model's context length from its config")


def load_hf_lm(folder: str | Path, device: torch.device, dtype: torch.dtype) -> HFCausalLM:
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise RuntimeError("loading a Hugging Face model needs transformers: "
                           "pip install 'siftline[hf]'") from exc
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=dtype)
    for key in UNSUPPORTED_SCALES:
        if getattr(model.config, key, None) not in (None, 1, 1.0):
            raise ValueError(f"{folder}: config.{key} rescales logits; not supported")
    model = model.to(device).eval()
    model.requires_grad_(False)
    hf_tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    backend = getattr(hf_tok, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{folder}: only fast (tokenizers-backed) tokenizers are supported")
    bos = hf_tok.bos_token_id if hf_tok.bos_token_id is not None else hf_tok.eos_token_id
    return HFCausalLM(model, Tokenizer(backend, bos), device, _context_length(model.config))
