"""The `mixture:` config section: how domain weights are computed after selection.

It lives beside the code it configures (as `siftline.lm.config` does) so that `siftline.config`
imports it without a cycle. Every check that needs no filesystem happens here, so a bad
schedule fails before any work starts, naming the dotted key.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field, field_validator

from siftline.sections import Section as _Section

# OpenAI's rule of thumb for its GPT-2/GPT-3 BPE tokenizers: "one token generally corresponds to
# ~4 characters of text for common English text" (help.openai.com, "What are tokens and how to
# count them?"). Code and non-English text give fewer characters per token; set a tokenizer
# for exact counts.
DEFAULT_CHARS_PER_TOKEN = 4.0
EPS = 1e-9
_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}


class PhaseSpec(_Section):
    """One step of the temperature schedule: fractions of training [start, end) at one tau."""

    start: float = Field(ge=0.0, le=1.0, description="Where the phase begins, as a fraction "
                         "of training.")
    end: float = Field(ge=0.0, le=1.0, description="Where it ends; the next phase starts "
                       "here, and the last ends at 1.")
    tau: float = Field(gt=0.0, description="Sampling temperature: 1 = token shares, "
                       "large = uniform.")


def cooldown_schedule(tau_start: float = 5.0, tau_end: float = 1.0,
                      switch: float = 0.5) -> list[PhaseSpec]:
    """The paper's Cooldown: tau = 5 for the first half of training, then tau = 1."""
    return [PhaseSpec(start=0.0, end=switch, tau=tau_start),
            PhaseSpec(start=switch, end=1.0, tau=tau_end)]


def parse_schedule(text: str) -> list[dict[str, float]]:
    """``"0:0.5:5,0.5:1:1"`` -> phases (start:end:tau, comma-separated); a bare number is one
    phase over all of training at that tau."""
    text = text.strip()
    if re.fullmatch(r"[0-9.eE+-]+", text):
        return [{"start": 0.0, "end": 1.0, "tau": float(text)}]
    phases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        fields = item.split(":")
        if len(fields) != 3:
            raise ValueError(f"phase {item!r}: expected START:END:TAU, e.g. 0:0.5:5")
        try:
            start, end, tau = (float(f) for f in fields)
        except ValueError:
            raise ValueError(f"phase {item!r}: START, END and TAU must be numbers") from None
        phases.append({"start": start, "end": end, "tau": tau})
    if not phases:
        raise ValueError("an empty schedule; expected e.g. 0:0.5:5,0.5:1:1")
    return phases


def parse_token_count(value: Any) -> Any:
    """``1B``, ``500M``, ``2.5T``, ``1e9`` or an int -> an int (SI suffixes, case-insensitive)."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*",
                             value)
        if not match:
            raise ValueError(f"{value!r} is not a token count (e.g. 1000000, 500M, 1B, 2.5T)")
        number = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(f"{value!r} is not a whole number of tokens")
        return int(number)
    return value


def check_schedule(phases: list[PhaseSpec]) -> list[PhaseSpec]:
    """Phases, in order, must cover [0, 1] without gaps or overlaps."""
    if not phases:
        raise ValueError("needs at least one phase")
    for i, phase in enumerate(phases):
        if phase.end <= phase.start + EPS:
            raise ValueError(f"[{i}] ends at {phase.end} but starts at {phase.start}: "
                             "end must be after start")
    if abs(phases[0].start) > EPS:
        raise ValueError(f"[0].start is {phases[0].start}: the schedule must start at 0")
    if abs(phases[-1].end - 1.0) > EPS:
        raise ValueError(f"[{len(phases) - 1}].end is {phases[-1].end}: the schedule must "
                         "end at 1")
    for i, (before, after) in enumerate(zip(phases, phases[1:], strict=False)):
        if abs(after.start - before.end) > EPS:
            kind = "a gap" if after.start > before.end else "an overlap"
            raise ValueError(f"[{i + 1}].start is {after.start} but [{i}].end is "
                             f"{before.end}: {kind}")
    return phases


class MixtureConfig(_Section):
    """Domain sampling weights for a trainer: temperature sampling over the kept tokens of each
    domain, on a schedule of phases (default: the Cooldown schedule), for a training budget."""

    enabled: bool = Field(True, description="Write OUT/weights.json at the end of the run.")
    train_tokens: int | None = Field(None, ge=1, description="Training budget in tokens "
                                     "(500M, 1B, ...); default: the kept tokens (one pass).")
    schedule: list[PhaseSpec] = Field(default_factory=cooldown_schedule,
                                      description="Phases {start, end, tau} covering [0, 1].")
    max_epochs: float = Field(4.0, gt=0, description="Warn about (or cap) domains repeated "
                              "more often than this over training.")
    cap: bool = Field(False, description="Cap domains at max_epochs and give the rest to the "
                      "others in proportion to their weights (UniMax).")
    tokenizer: str | None = Field(None, description="tokenizer.json or a model folder to count "
                                  "tokens with; default: chars_per_token.")
    chars_per_token: float = Field(DEFAULT_CHARS_PER_TOKEN, gt=0, description="Estimate used "
                                   "without a tokenizer (~4 for English text, GPT-2 BPE).")
    seed: int = Field(0, ge=0, description="Seed of the mixed shards' sampling.")
    plot: bool = Field(True, description="Write OUT/plots/weights.png.")

    @field_validator("train_tokens", mode="before")
    @classmethod
    def _token_count(cls, value: Any) -> Any:
        return parse_token_count(value)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_string(cls, value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return parse_schedule(str(value))
        return value

    @field_validator("schedule")
    @classmethod
    def _covers_training(cls, value: list[PhaseSpec]) -> list[PhaseSpec]:
        return check_schedule(value)

    def taus(self) -> list[tuple[float, float, float]]:
        return [(p.start, p.end, p.tau) for p in self.schedule]
