"""The data-efficiency factor: how many times fewer tokens of a selection reach the target loss
that random data reaches at the largest budget (CoLoR-Filter's headline measure).

Loss curves are sampled at a few budgets; between samples the loss is interpolated linearly in
log(tokens), the shape scaling curves have over a small range. No extrapolation: where the
crossing lies outside the sampled budgets the factor is a bound, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Efficiency:
    factor: float  # > 1: the selection needs fewer tokens than random
    bound: str  # "exact" | "lower" (factor is at least this) | "upper" (at most this)
    target_loss: float  # random data's loss at the largest budget
    tokens_to_target: float | None  # selected tokens that reach target_loss (interpolated)

    def to_dict(self) -> dict[str, float | str | None]:
        return asdict(self)


def efficiency_factor(budgets: Sequence[float], losses: Sequence[float],
                      random_losses: Sequence[float]) -> Efficiency:
    """`budgets` ascending, the same for both curves.

    When the selection reaches random's final loss within the budgets: factor = largest budget /
    the tokens at which it gets there (>= 1). When it never does: the inverse measure, the tokens
    random needs to reach the selection's best loss over the largest budget (< 1, worse than
    random). Crossings before the first budget give a lower bound (upper when worse).
    """
    _check(budgets, losses, random_losses)
    top = float(budgets[-1])
    target = float(random_losses[-1])
    reached = _crossing(budgets, losses, target)
    if reached is not None:
        tokens, inside = reached
        return Efficiency(top / tokens, "exact" if inside else "lower", target, tokens)
    best = min(float(x) for x in losses)
    # random's last loss (`target`) is below `best`, so its curve crosses `best` somewhere
    tokens, inside = _crossing(budgets, random_losses, best) or (top, True)
    return Efficiency(tokens / top, "exact" if inside else "upper", target, None)


def _crossing(budgets: Sequence[float], losses: Sequence[float],
              level: float) -> tuple[float, bool] | None:
    """First budget (interpolated in log tokens) where the curve is at or below `level`, and
    whether it lies inside the sampled range (False: at or before the first sample)."""
    if losses[0] <= level:
        return float(budgets[0]), False
    for i in range(1, len(budgets)):
        if losses[i] <= level:
            lo, hi = math.log(budgets[i - 1]), math.log(budgets[i])
            share = (losses[i - 1] - level) / (losses[i - 1] - losses[i])
            return math.exp(lo + share * (hi - lo)), True
    return None


def _check(budgets: Sequence[float], losses: Sequence[float],
           random_losses: Sequence[float]) -> None:
    if not budgets or len(losses) != len(budgets) or len(random_losses) != len(budgets):
        raise ValueError("budgets, losses and random_losses must be non-empty and equally long")
    pairs = zip(budgets[:-1], budgets[1:], strict=True)
    if any(b <= 0 for b in budgets) or any(b >= c for b, c in pairs):
        raise ValueError(f"budgets must be positive and strictly ascending, got {list(budgets)}")
    if any(math.isnan(x) for x in [*losses, *random_losses]):
        raise ValueError("losses must not be NaN")
