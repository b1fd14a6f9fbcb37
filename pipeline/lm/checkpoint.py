"""Model folders: what is saved beside a model and how any model folder is loaded for scoring.

A siftline model folder holds `model.safetensors`, `siftline_lm.json` (the `ModelConfig` plus a
format version) and `tokenizer.json`. A folder with a Hugging Face `config.json` instead is loaded
through transformers (`siftline.lm.hf`). Both come back as a `LanguageModel`: hidden states,
the unembedding head, the tokenizer and the context length, which is all scoring needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from siftline.lm.config import ModelConfig
from siftline.lm.model import CausalLM, Head
from siftline.lm.tokenizer import Tokenizer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "siftline_lm.json"
FORMAT_VERSION = 1


class LanguageModel(Protocol):
    tokenizer: Tokenizer
    context_length: int
    device: torch.device

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states `[B, T, d]`; rows are right-padded, `attention_mask` marks tokens."""

    def head(self) -> Head: ...


@dataclass
class SiftlineLM:
    """A siftline `CausalLM` with its tokenizer, ready for scoring."""

    model: CausalLM
    tokenizer: Tokenizer
    device: torch.device

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)  # causal: right padding never reaches a real token

    def head(self) -> Head:
        return self.model.head()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no GPU")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(folder: str | Path, model: CausalLM, tokenizer: Tokenizer,
               extra: dict[str, Any] | None = None) -> Path:
    """Write weights, config and tokenizer; each file is renamed into place once complete."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous()
             for name, tensor in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("unembed.weight", None)
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp))
    os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates the file private (0600)
    tmp.replace(folder / WEIGHTS_FILE)
    tokenizer.save(folder)
    meta = {"format": FORMAT_VERSION, "model": model.config.model_dump(), **(extra or {})}
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(folder / CONFIG_FILE)
    return folder


def read_model_config(folder: str | Path) -> ModelConfig:
    path = Path(folder) / CONFIG_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format {meta.get('format')!r}")
    return ModelConfig.model_validate(meta["model"])


def load_causal_lm(folder: str | Path, device: torch.device | str = "cpu") -> CausalLM:
    from safetensors.torch import load_file

    folder = Path(folder)
    model = CausalLM(read_model_config(folder))
    state = load_file(str(folder / WEIGHTS_FILE), device=str(device))
    model.load_state_dict(state, strict=True)
    return model.to(device)


def is_model_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() or (folder / "config.json").is_file()


def load_lm(folder: str | Path, device: str = "auto", dtype: str = "auto") -> LanguageModel:
    """Load a siftline or Hugging Face model folder for scoring (eval mode, no gradients)."""
    folder = Path(folder)
    where = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, where)
    if (folder / CONFIG_FILE).is_file():
        model = load_causal_lm(folder, where).to(torch_dtype).eval()
        model.requires_grad_(False)
        return SiftlineLM(model, Tokenizer.load(folder), where)
    if (folder / "config.json").is_file():
        from siftline.lm.hf import load_hf_lm

        return load_hf_lm(folder, where, torch_dtype)
    raise FileNotFoundError(f"{folder}: not a model folder (no {CONFIG_FILE} or config.json)")
