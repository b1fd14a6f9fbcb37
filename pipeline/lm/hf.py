"""Hugging Face causal LMs from a local folder, scored through the same fused loss kernel.

The backbone (`model.<base_model_prefix>`) gives final hidden states after the last norm, and the
output embedding (plus its bias, and Gemma-2's final logit soft-cap) is the head, so the `[T, V]`
logits are never built. Models that rescale logits another way are refused rather than mis-scored:
known scaling keys in the config are rejected before any weight is read, and once loaded, the
head is checked against the model's own logits on a short probe sequence.

The tokenizer is a copy of the folder's fast tokenizer with truncation and padding off and
special tokens matched as plain text, so a document that contains the literal text of a special
token (`<|endoftext|>`, `<s>`) is scored as that text rather than as a document separator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from siftline.lm.model import Head
from siftline.lm.tokenizer import Tokenizer

# Config keys of architectures whose logits are not `hidden @ W.T (+ b)` (Cohere, Granite,
# Falcon-H1, ...). A value of 1 (or None) is a no-op and is accepted.
UNSUPPORTED_SCALES = ("logit_scale", "logits_scaling", "output_multiplier_scale",
                      "lm_head_multiplier")
PROBE_TOKENS = 8


@dataclass
class HFCausalLM:
    model: Any  # transformers PreTrainedModel
    tokenizer: Tokenizer
    device: torch.device
    context_length: int

    @property
    def backbone(self) -> Any:
        return getattr(self.model, self.model.base_model_prefix)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                            return_dict=True)
        return out.last_hidden_state

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


def _check_config(folder: Path, config: Any) -> None:
    for key in UNSUPPORTED_SCALES:
        if getattr(config, key, None) not in (None, 1, 1.0):
            raise ValueError(f"{folder}: config.{key} = {getattr(config, key)!r} rescales "
                             "logits; not supported")


def _dtype_kwarg(transformers: Any) -> str:
    """`dtype` since transformers 4.56 (`torch_dtype` is deprecated there), before it only
    `torch_dtype`: an unknown keyword would silently land in the config."""
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _check_structure(folder: Path, lm: HFCausalLM) -> None:
    """The backbone + head must reproduce the model's own logits (probe of a few tokens)."""
    model = lm.model
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or not isinstance(getattr(model, prefix, None), torch.nn.Module):
        raise ValueError(f"{folder}: {type(model).__name__} has no backbone "
                         f"(model.{prefix or '<base_model_prefix>'})")
    out = model.get_output_embeddings()
    if out is None or not isinstance(getattr(out, "weight", None), torch.Tensor):
        raise ValueError(f"{folder}: {type(model).__name__} has no output embedding")
    head = lm.head()
    length = max(1, min(PROBE_TOKENS, lm.context_length))
    ids = (torch.arange(length, device=lm.device) * 7919 % head.weight.shape[0])[None]
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[0].float()
        logits = lm.hidden_states(ids, mask)[0].float() @ head.weight.float().T
        if head.bias is not None:
            logits += head.bias.float()
        if head.softcap is not None:
            logits = head.softcap * torch.tanh(logits / head.softcap)
    # Exact in fp32; in bf16/fp16 the model's own logits are rounded to ~3 significant digits.
    tol = 1e-4 if model.dtype == torch.float32 else 3e-2
    scale = float(expected.abs().max()) + 1e-6
    worst = float((logits - expected).abs().max())
    if not worst <= tol * scale + 1e-5:
        raise ValueError(f"{folder}: hidden states @ output embedding do not reproduce "
                         f"{type(model).__name__}'s logits (max difference {worst:.3g} against "
                         f"logits up to {scale:.3g}); this architecture is not supported")


def _scoring_tokenizer(folder: Path, hf_tok: Any) -> Tokenizer:
    backend = getattr(hf_tok, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{folder}: only fast (tokenizers-backed) tokenizers are supported")
    from tokenizers import Tokenizer as Backend

    backend = Backend.from_str(backend.to_str())  # our own copy, settings below are ours
    backend.no_truncation()
    backend.no_padding()
    backend.encode_special_tokens = True  # text that spells a special token stays text
    bos = hf_tok.bos_token_id if hf_tok.bos_token_id is not None else hf_tok.eos_token_id
    return Tokenizer(backend, bos)


def load_hf_lm(folder: str | Path, device: torch.device, dtype: torch.dtype) -> HFCausalLM:
    """Load a local transformers causal LM (no download, no remote code) for scoring."""
    try:
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ImportError("loading a Hugging Face model folder needs transformers: "
                          "pip install 'siftline[hf]'") from exc
    folder = Path(folder)
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    _check_config(folder, config)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), config=config, local_files_only=True, **{_dtype_kwarg(transformers): dtype})
    _check_config(folder, model.config)
    model = model.to(device).eval()
    model.requires_grad_(False)
    hf_tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    lm = HFCausalLM(model, _scoring_tokenizer(folder, hf_tok), device,
                    _context_length(model.config))
    _check_structure(folder, lm)
    return lm
