"""Config sections of the dedupe stages and of users' own stages (`stages.custom`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from siftline.sections import Section as _Section

STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ExactDedupeConfig(_Section):
    enabled: bool = Field(True, description="Drop every copy of a text but one (after "
                          "normalizing whitespace and Unicode), across all inputs.")
    partitions: int | None = Field(None, ge=1, description="Shuffle partitions; default by size.")


class NearDedupeConfig(_Section):
    """MinHash LSH near-duplicate removal; bands x rows default to the optimum for `threshold`."""

    enabled: bool = Field(False, description="Drop near-duplicate documents, keeping one per "
                          "cluster of similar texts (MinHash LSH over shingles).")
    ngram: int = Field(5, ge=1, description="Shingle length: words per n-gram (characters "
                       "with `char`).")
    char: bool = Field(False, description="Character n-grams instead of word n-grams.")
    num_perm: int = Field(128, ge=2, le=1024, description="MinHash permutations: the length "
                          "of each document's signature.")
    seed: int = Field(1, ge=0, description="Seed of the MinHash permutations.")
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity from which "
                             "two documents are near duplicates; sets bands x rows unless "
                             "both are given.")
    bands: int | None = Field(None, ge=1, description="LSH bands, with `rows`; default: the "
                              "optimum for `threshold`.")
    rows: int | None = Field(None, ge=1, description="Signature values per band, with "
                             "`bands`.")
    keep_signatures: bool = Field(False, description="Also write the `minhash` column to scored/.")
    verify: Literal["none", "signature", "jaccard"] = Field(
        "jaccard", description="Check each candidate pair against `threshold` before it links"
        " two documents: the exact shingle Jaccard (jaccard, from the staged texts), the share"
        " of equal signature values (signature: cheaper, an estimate with a standard deviation"
        " of ~0.04 at 128 permutations), or not at all (none: every shared band links).")

    @model_validator(mode="after")
    def _bands_fit(self) -> NearDedupeConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (chosen from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm")
        return self


class CutConfig(_Section):
    """A user stage's global cut by one of its columns: the top (or bottom) 1/tau of the
    candidates, a share of their characters, or every row at or beyond a threshold; ties by id.
    Candidates are the rows dedupe and the reading-time rules keep."""

    column: str = Field(description="The column the stage adds that the cut ranks by.")
    keep: Literal["top", "bottom"] = Field("top", description="Keep the highest or lowest.")
    tau: float | None = Field(None, ge=1, description="Keep 1/tau of the candidates.")
    share: float | None = Field(None, gt=0, le=1, description="Keep this share of the "
                                "candidates' characters, best first.")
    threshold: float | None = Field(None, description="Keep rows scoring at least this (top) "
                                    "or at most this (bottom).")
    per_domain: bool = Field(False, description="Apply the rule within each domain.")
    plot: bool = Field(False, description="Draw plots/<column>.png with the cut.")

    @model_validator(mode="after")
    def _one_rule(self) -> CutConfig:
        given = [k for k in ("tau", "share", "threshold") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of tau, share and threshold "
                             f"(got {given or 'none'})")
        return self

    def rule(self) -> tuple[str, float]:
        kind = next(k for k in ("tau", "share", "threshold") if getattr(self, k) is not None)
        return kind, float(getattr(self, kind))


class CustomStageConfig(_Section):
    """A stage from the user's own code: `callable` ("module.path:factory") is called once per
    worker with `args` and returns a `Table -> Table` callable that adds columns."""

    name: str = Field(description="The stage's name: for --stages, and its drop reason.")
    callable: str = Field(description="module.path:factory, importable on every worker.")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the "
                                 "factory.")
    columns: list[str] = Field(default_factory=list, description="Columns the stage adds "
                               "(checked on every batch; the cut's column is added).")
    cut: CutConfig | None = Field(None, description="Drop rows by one of its columns.")
    enabled: bool = Field(True, description="Run this stage; false keeps its entry but skips "
                          "it.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STAGE_NAME.match(value):
            raise ValueError(f"{value!r}: lower-case letters, digits and _, starting with a letter")
        return value

    @field_validator("callable")
    @classmethod
    def _callable(cls, value: str) -> str:
        module, sep, attr = value.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"{value!r}: expected module.path:factory")
        return value


class ClassifierConfig(_Section):
    """Any fastText classifier as a scorer (DCLM's quality classifier, PreSelect's released
    one, your own): the probability of `label` becomes `classifier_score`, and one global cut
    keeps the rows at or above a threshold (0.5 unless another rule is given), the best rows up
    to a share of the candidates' characters, or the top 1/tau of them."""

    enabled: bool = Field(False, description="Score every document with a fastText "
                          "classifier (needs `model`) and keep those the rule selects.")
    model: str | None = Field(None, description="A local fastText model file (.bin, or a "
                              "quantized .ftz).")
    label: str = Field("__label__1", description="The label whose probability is the score, "
                       "as the model names it (DCLM's OH-2.5 classifier: __label__hq).")
    keep: Literal["top", "bottom"] = Field("top", description="Keep the highest scores or "
                                           "the lowest.")
    threshold: float | None = Field(None, description="Keep rows scoring at least this (top) "
                                    "or at most this (bottom); the default rule, at 0.5.")
    share: float | None = Field(None, gt=0, le=1, description="Instead: keep the best rows "
                                "while their characters stay within this share.")
    tau: float | None = Field(None, ge=1, description="Instead: keep the best 1/tau of rows.")
    per_domain: bool = Field(False, description="Apply the rule within each domain.")
    batch_size: int = Field(1024, ge=1, description="Documents per predict call.")
    plot: bool = Field(False, description="Draw plots/classifier_score.png with the cut.")

    @model_validator(mode="after")
    def _consistent(self) -> ClassifierConfig:
        given = [k for k in ("threshold", "share", "tau") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of threshold, share and tau (got {given})")
        if self.enabled and self.model is None:
            raise ValueError("the classifier stage needs a model (a fastText .bin or .ftz)")
        return self

    def rule(self) -> tuple[str, float]:
        """('threshold', t) | ('share', s) | ('tau', t): the rule in force."""
        for kind in ("share", "tau", "threshold"):
            if getattr(self, kind) is not None:
                return kind, float(getattr(self, kind))
        return "threshold", 0.5


class LanguageConfig(_Section):
    """fastText language identification (lid.176, bundled): every document gets its top
    `language` and `language_score`, and is dropped unless one of `languages` scores above
    `threshold` (datatrove's LanguageFilter rule, FineWeb's 0.65 by default)."""

    enabled: bool = Field(False, description="Identify each document's language and drop "
                          "those not in `languages`.")
    model: str | None = Field(None, description="A local fastText language-ID model with "
                              "__label__<code> labels (the full lid.176.bin); default: the "
                              "bundled lid.176.ftz.")
    languages: list[str] = Field(default_factory=lambda: ["en"], description="Keep documents "
                                 "in these languages, as lid.176 names them (en, fr, zh, ...).")
    threshold: float = Field(0.65, ge=0.0, lt=1.0, description="Keep a document when a wanted "
                             "language's probability is above this (strictly).")
    batch_size: int = Field(1024, ge=1, description="Documents per predict call.")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one language code (e.g. [en])")
        bad = [code for code in value if not code or code != code.strip() or " " in code]
        if bad:
            raise ValueError(f"{bad}: language codes as lid.176 names them, without spaces")
        return [code.removeprefix("__label__") for code in value]
