"""PreSelect's config sections (`stages.preselect`); unknown keys fail naming the dotted key.

Kept beside the code it configures and free of `siftline.config` imports, so that module can
import it without a cycle (as it does `siftline.lm.config`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from siftline.lm.config import ModelConfig, SampleConfig, ScoreConfig, TrainConfig
from siftline.sections import Section


class FastTextConfig(Section):
    """fastText supervised training; defaults are the paper's (Table 5)."""

    lr: float = Field(0.1, gt=0, description="fastText's learning rate.")
    dim: int = Field(100, ge=1, description="Word vector size; the model grows with it.")
    epoch: int = Field(5, ge=1, description="Passes over the labelled documents.")
    word_ngrams: int = Field(2, ge=1, description="Longest word n-gram used as a feature "
                             "(2: words and word pairs).")
    minn: int = Field(0, ge=0, description="Shortest character n-gram of subword features; 0 "
                      "(with maxn 0): none.")
    maxn: int = Field(0, ge=0, description="Longest character n-gram of subword features.")
    min_count: int = Field(1, ge=1, description="Words seen fewer times are left out of the "
                           "vocabulary.")
    loss: Literal["softmax", "ns", "hs", "ova"] = Field(
        "softmax", description="fastText's loss: softmax, negative sampling (ns), hierarchical "
        "softmax (hs) or one-vs-all (ova).")
    bucket: int = Field(2_000_000, ge=1, description="Hashed n-gram buckets (the model's size "
                        "grows with bucket x dim; use a few thousand in tests).")
    threads: int = Field(1, ge=1, description="1 makes training deterministic.")
    seed: int = Field(0, ge=0, description="Seed of fastText, of the training file's shuffle "
                      "and of the hold-out.")
    holdout_fraction: float = Field(0.1, ge=0, lt=1, description="Labelled documents held out "
                                    "to report precision and recall.")


class ReferenceModel(Section):
    """A reference LM with its known downstream score (higher is better)."""

    path: str = Field(description="Model folder: siftline's or a Hugging Face causal LM.")
    score: float = Field(description="Its downstream benchmark score (e.g. averaged accuracy).")
    name: str | None = Field(None, description="Column name in the labels file; default the "
                             "folder's name.")

    def label(self) -> str:
        return self.name or self.path.rstrip("/").rsplit("/", 1)[-1]


class EvalSetConfig(Section):
    """A downstream target for `siftline eval-lm` and the offline path: multiple-choice JSON Lines
    ({query, choices, gold}: accuracy), or text (score = minus bits per character)."""

    paths: list[str] = Field(default_factory=list, description="Eval files: multiple-choice "
                             "JSON Lines ({query, choices, gold}) or text.")
    kind: Literal["auto", "choice", "loss"] = Field("auto", description="auto: choice for eval "
                                                    "records, loss otherwise.")
    domain: str | None = Field(None, description="Loss on held-out documents of this corpus "
                               "domain instead of paths.")
    holdout_fraction: float = Field(0.1, gt=0, lt=1, description="With `domain`: the share "
                                    "of its documents held out as the eval text.")
    max_examples: int | None = Field(1000, ge=1, description="First N questions or texts.")
    length_norm: bool = Field(False, description="Choices compared by log-likelihood per "
                              "character (acc_norm) instead of the sum.")
    seed: int = Field(0, ge=0, description="With `domain`: seed of the id hash that picks the "
                      "held-out documents.")

    @model_validator(mode="after")
    def _one_source(self) -> EvalSetConfig:
        if bool(self.paths) == bool(self.domain):
            raise ValueError("give the eval set as paths or as a corpus domain, not both/neither")
        if self.domain is not None and self.kind == "choice":
            raise ValueError("a corpus domain is text: kind must be loss or auto")
        return self


class ReferenceSpec(Section):
    """One small reference LM of the offline path: a size and a token budget."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The model's name: its folder "
                      "under references/ and its column in the labels.")
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(preset="tiny"))
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(tokens=100_000))
    sample: SampleConfig | None = Field(None, description="This model's own corpus sample "
                                        "(another seed or size); default the shared one.")


class OfflineReferencesConfig(Section):
    """The offline stand-in for the paper's Llama family: K small LMs of different sizes or token
    budgets trained on a corpus sample, their downstream scores measured on `eval`."""

    models: list[ReferenceSpec] = Field(min_length=2, description="The reference LMs to "
                                        "train (at least two, differing in size or tokens).")
    sample: SampleConfig = Field(default_factory=lambda: SampleConfig(max_bytes=2_000_000))
    eval: EvalSetConfig
    score: ScoreConfig = Field(default_factory=lambda: ScoreConfig(threads=1))

    @model_validator(mode="after")
    def _unique(self) -> OfflineReferencesConfig:
        names = [spec.name for spec in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        return self


class LabelConfig(Section):
    """The labelling sample and how the reference models score it."""

    sample: SampleConfig = Field(default_factory=lambda: SampleConfig(max_bytes=2_000_000,
                                                                      seed=1))
    score: ScoreConfig = Field(default_factory=lambda: ScoreConfig(threads=1))
    max_per_class: int | None = Field(None, ge=1, description="Cap on positives (and so on "
                                      "negatives).")


class PreselectConfig(Section):
    """PreSelect: a fastText classifier's P(__label__1) per document; keep the top `keep` share
    of the characters (or every document at or above `threshold`), optionally per domain."""

    enabled: bool = Field(False, description="Score documents with PreSelect's fastText "
                          "classifier (given or built) and keep the best share.")
    model: str | None = Field(None, description="A fastText .bin with __label__1/__label__0 "
                              "(e.g. the released PreSelect classifier); null: build one.")
    models_dir: str | None = Field(None, description="Where a built classifier, labels and "
                                   "reference LMs go; default OUTPUT/models/preselect.")
    references: list[ReferenceModel] = Field(default_factory=list, description="Given "
                                             "reference models with their downstream scores.")
    train_references: OfflineReferencesConfig | None = Field(None, description="Or train "
                                                             "small reference LMs here.")
    label: LabelConfig = Field(default_factory=LabelConfig)
    fasttext: FastTextConfig = Field(default_factory=FastTextConfig)
    keep: float = Field(0.1, gt=0, le=1, description="Share of the candidates' characters kept.")
    threshold: float | None = Field(None, ge=0, le=1, description="Keep score >= threshold "
                                    "instead of a character share.")
    per_domain: bool = Field(False, description="Apply keep within each domain.")
    batch_size: int = Field(1024, ge=1, description="Documents per fastText predict call.")

    @model_validator(mode="after")
    def _consistent(self) -> PreselectConfig:
        if self.references and self.train_references is not None:
            raise ValueError("give references or train_references, not both")
        if self.references:
            if len(self.references) < 2:
                raise ValueError("references: at least two models are needed to rank")
            if len({ref.score for ref in self.references}) < 2:
                raise ValueError("references: all scores are equal, so no pair can count")
            names = [ref.label() for ref in self.references]
            if len(set(names)) != len(names):
                raise ValueError(f"references: names must be unique, got {names}")
        if (self.enabled and self.model is None and not self.references
                and self.train_references is None):
            raise ValueError("give a classifier (model), references, or train_references")
        return self

    def rule(self) -> tuple[str, float]:
        """('threshold', t) when a threshold is given, else ('keep', share of characters)."""
        if self.threshold is not None:
            return "threshold", float(self.threshold)
        return "keep", float(self.keep)
