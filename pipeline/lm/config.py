"""Model and training settings, as config sections (unknown keys fail naming the dotted key).

Presets span the sizes the pipeline needs: `tiny` for tests (a few hundred thousand parameters),
`demo` for the CPU demo job, up to `150m` (GPT-2-small shape), the size CoLoR-Filter's paper uses
for its auxiliary models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ByteSize, Field, model_validator

from siftline.sections import Section as _Section

PRESETS: dict[str, dict[str, int | bool]] = {
    "tiny": {"d_model": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 2048,
             "context_length": 128},
    "demo": {"d_model": 128, "n_layers": 4, "n_heads": 4, "vocab_size": 8192,
             "context_length": 256},
    "small": {"d_model": 256, "n_layers": 6, "n_heads": 8, "vocab_size": 16384,
              "context_length": 512},
    "150m": {"d_model": 768, "n_layers": 10, "n_heads": 12, "vocab_size": 50304,
             "context_length": 1024, "tie_embeddings": False},
}


class ModelConfig(_Section):
    """A GPT-style causal LM: pre-norm (RMSNorm) blocks, rotary positions, GELU MLP."""

    preset: Literal["tiny", "demo", "small", "150m"] | None = Field(
        None, description="Fill unset sizes from a preset; explicit keys win.")
    vocab_size: int = Field(8192, ge=2, description="Token embeddings; a trained BPE "
                            "tokenizer gets this many entries (at most).")
    d_model: int = Field(128, ge=8, description="Hidden width; with n_layers, what sets the "
                         "model's size and cost.")
    n_layers: int = Field(4, ge=1, description="Transformer blocks.")
    n_heads: int = Field(4, ge=1, description="Attention heads; must divide d_model into an "
                         "even head dimension (rotary pairs).")
    d_ff: int | None = Field(None, ge=8, description="MLP width; default 4 x d_model.")
    context_length: int = Field(256, ge=8, description="Tokens per training sequence and "
                                "scoring window; longer documents are scored in windows.")
    tie_embeddings: bool = Field(True, description="Share the input embedding with the output "
                                 "projection (fewer parameters).")
    rope_theta: float = Field(10000.0, gt=0, description="Base of the rotary position "
                              "frequencies.")
    norm_eps: float = Field(1e-5, gt=0, description="RMSNorm's epsilon.")

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset"):
            preset = PRESETS.get(data["preset"])
            if preset is not None:
                data = {**preset, **data}
        return data

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("the head dimension d_model / n_heads must be even (rotary pairs)")
        return self

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model


class TrainConfig(_Section):
    """AdamW with linear warmup and cosine decay; sizes in tokens so they scale with the data."""

    tokens: int = Field(2_000_000, ge=1, description="Training tokens (steps = tokens / batch).")
    batch_size: int = Field(16, ge=1, description="Sequences per step.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate, reached after warmup.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="The cosine decay ends at this "
                                "fraction of lr.")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="Share of the steps with a "
                                   "linear warmup from 0 to lr.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay, on weight matrices "
                                "only (not norms' gains).")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW's beta1 and beta2.")
    grad_clip: float = Field(1.0, gt=0, description="Clip the gradients' global norm to this.")
    seed: int = Field(0, description="Seed of the weights' initialisation, the batch order and "
                      "the validation hold-out.")
    val_fraction: float = Field(0.05, gt=0, lt=1, description="Share of the training documents "
                                "held out for the validation loss.")
    eval_every: int = Field(100, ge=1, description="Steps between validation losses.")
    checkpoint_every: int = Field(200, ge=1, description="Steps between resumable checkpoints.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train; auto: "
                                                   "a GPU when torch sees one, else the CPU.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default all cores.")
    epochs: float | None = Field(None, gt=0, description="Passes over the training sequences; "
                                 "when set it replaces `tokens` (fine-tuning on target text).")
    eval_tokens: int | None = Field(65_536, ge=1, description="Validation tokens per "
                                    "evaluation (the first ones, always the same); None = all.")


class ScoreConfig(_Section):
    """How a scorer batches documents; none of it changes a document's result."""

    batch_tokens: int = Field(16384, ge=64, description="Padded tokens per forward pass.")
    stride: int | None = Field(None, ge=1, description="Window step for long documents; "
                               "default half the context.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to score; auto: "
                                                   "a GPU when torch sees one, else the CPU.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights' precision while scoring; auto: bfloat16 on a GPU, "
        "float32 on the CPU.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads per worker.")
    backend: Literal["auto", "triton", "torch"] = Field(
        "auto", description="Token-loss kernel: triton (fused, GPU), torch (chunked); auto: "
        "triton on a GPU where it is installed, else torch.")


class SampleConfig(_Section):
    """Which documents a model trains on: the ones with the smallest seeded hash of their id, up
    to `max_bytes`, so the sample is uniform and does not depend on how the input is split."""

    max_bytes: ByteSize | None = Field(ByteSize(8_000_000), gt=0, description="UTF-8 bytes of "
                                       "text to sample (training + validation); None = all.")
    scan_bytes: ByteSize | None = Field(None, gt=0, description="Read at most this much text "
                                        "(splits in seeded order); None = the whole corpus.")
    seed: int = Field(0, ge=0, description="Seed of the id hash that picks the sample (and of "
                      "the split order with scan_bytes).")
