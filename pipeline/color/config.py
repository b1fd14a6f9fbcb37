"""CoLoR-Filter's config section: the target text, how the two models are trained, the cut."""

from __future__ import annotations

from typing import Literal

from pydantic import ByteSize, Field, model_validator

from siftline.io.config import FieldMap
from siftline.lm.config import ModelConfig, SampleConfig, ScoreConfig, TrainConfig
from siftline.sections import Section as _Section


class TargetConfig(_Section):
    """CoLoR-Filter's target text: what the conditional model is fine-tuned on."""

    paths: list[str] = Field(default_factory=list, description="Eval-set JSON Lines "
                             "({query, choices, gold}), text files, or any siftline input.")
    format: Literal["auto", "eval", "text", "jsonl", "input"] = Field(
        "auto", description="How target files are read: eval (JSON Lines {query, choices, "
        "gold}: prompt + gold answer), text (one text per paragraph), jsonl (template or text "
        "field), input (like a corpus input); auto: from each file's name and first record.")
    fields: FieldMap = Field(default_factory=FieldMap, description="For format jsonl/input.")
    template: str | None = Field(None, description="A str.format template over each record's "
                                 "fields, e.g. '{question} {answer}'.")
    domain: str | None = Field(None, description="Use held-out documents of this domain of "
                               "the corpus itself (no paths needed).")
    holdout_fraction: float = Field(0.1, gt=0, lt=1, description="Share of `domain` held out.")
    max_bytes: ByteSize | None = Field(None, gt=0, description="Cap on target text.")
    seed: int = Field(0, ge=0, description="Seed of the id hash that picks `domain`'s held-out "
                      "documents; another seed holds out another share.")

    @model_validator(mode="after")
    def _one_source(self) -> TargetConfig:
        if bool(self.paths) == bool(self.domain):
            raise ValueError("give the target as paths or as a corpus domain, not both/neither")
        return self


class ColorTrainConfig(_Section):
    """How the auxiliary models are trained when no model folders are given (paper's recipe:
    prior on a random corpus sample, conditional = prior fine-tuned ~1 epoch on the target with
    a fresh optimizer), scaled down by default to run on a CPU."""

    model: ModelConfig = Field(default_factory=lambda: ModelConfig(preset="tiny"))
    sample: SampleConfig = Field(default_factory=lambda: SampleConfig(max_bytes=2_000_000))
    prior: TrainConfig = Field(default_factory=lambda: TrainConfig(tokens=400_000))
    conditional: TrainConfig = Field(default_factory=lambda: TrainConfig(
        epochs=1.0, lr=3e-4, warmup_fraction=0.1))


class ColorFilterConfig(_Section):
    """CoLoR-Filter: score = mean NLL under the prior - mean NLL under the conditional model;
    keep the top 1/tau (or a token/character budget), optionally per domain."""

    enabled: bool = Field(False, description="Score documents by how much a model fine-tuned "
                          "on the target gains over the prior on them, and keep the best.")
    target: TargetConfig | None = Field(None, description="The text the selection should help "
                                        "predict: files (paths) or a held-out corpus domain; "
                                        "needed unless prior and conditional are given.")
    prior: str | None = Field(None, description="Prior model folder (siftline or HF).")
    conditional: str | None = Field(None, description="Conditional model folder.")
    models_dir: str | None = Field(None, description="Where trained models go; default "
                                   "OUTPUT/models (must be a local path).")
    train: ColorTrainConfig = Field(default_factory=ColorTrainConfig)
    score: ScoreConfig = Field(default_factory=lambda: ScoreConfig(threads=1))
    tau: float | None = Field(16.0, ge=1, description="Keep the top 1/tau of candidates.")
    budget_tokens: int | None = Field(None, ge=1, description="Keep the best rows up to this "
                                      "many tokens (instead of tau).")
    budget_chars: int | None = Field(None, ge=1, description="... or this many characters.")
    per_domain: bool = Field(False, description="Apply tau or the budget within each domain "
                             "(a budget is then split by each domain's share of candidates).")
    gpus_per_worker: float = Field(0, ge=0, description="GPU share per scoring actor.")
    plot: bool = Field(True, description="Write color_score histograms (PNG) beside stats.")

    @model_validator(mode="after")
    def _consistent(self) -> ColorFilterConfig:
        if (self.prior is None) != (self.conditional is None):
            raise ValueError("give both prior and conditional model folders, or neither")
        if self.enabled and self.prior is None and self.target is None:
            raise ValueError("training the conditional model needs a target")
        rules = [r for r in ("budget_tokens", "budget_chars") if getattr(self, r) is not None]
        if len(rules) > 1:
            raise ValueError("give at most one of budget_tokens and budget_chars")
        return self

    def rule(self) -> tuple[str, float]:
        """('tau', t) | ('tokens', n) | ('chars', n): the selection rule in force."""
        if self.budget_tokens is not None:
            return "tokens", float(self.budget_tokens)
        if self.budget_chars is not None:
            return "chars", float(self.budget_chars)
        if self.tau is None:
            raise ValueError("color_filter needs tau or a budget")
        return "tau", float(self.tau)
