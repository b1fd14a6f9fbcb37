"""A temperature schedule over a training budget: tokens per phase and domain, epochs, caps.

Pure functions over per-domain token counts, so every number in `weights.json` can be checked
by hand. Integer tokens add up exactly: the budget is split over phases by their length, and
each phase over its domains by weight, both with the largest-remainder method.

With `cap`, a domain that would be repeated more than `max_epochs` times gets exactly
`max_epochs x n_i` tokens (its draws in every phase shrink by the same factor) and, phase by
phase, what it gives up goes to the uncapped domains in proportion to their weights; repeated
until no domain exceeds the cap or all are capped (UniMax, Chung et al. 2023). When all are
capped the budget cannot be met within the cap: the weights fall back to the token shares,
which repeats every domain equally (the fewest epochs any allocation can reach), and a warning
says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from siftline.mixture.weights import largest_remainder, temperature_weights

REL_TOL = 1e-9


@dataclass
class PhasePlan:
    start: float
    end: float
    tau: float
    tokens: int  # this phase's share of the training budget
    weights: dict[str, float]  # what a trainer samples with (after any cap)
    temperature_weights: dict[str, float]  # p_i(tau) before any cap
    domain_tokens: dict[str, int]  # tokens drawn from each domain in this phase


@dataclass
class MixturePlan:
    tokens: dict[str, int]  # kept tokens per domain (n_i)
    train_tokens: int
    max_epochs: float
    cap: bool
    phases: list[PhasePlan]
    drawn: dict[str, int]  # tokens drawn from each domain over all of training
    epochs: dict[str, float]  # drawn / n_i
    capped: list[str] = field(default_factory=list)
    all_capped: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def phase_budgets(train_tokens: int, phases: Sequence[tuple[float, float, float]]) -> list[int]:
    """The budget split over phases by their length (exact integers). Lengths are rounded to
    12 decimals so that equal phases tie (1 - 2/3 is not 1/3 in floats) and go by order."""
    lengths = {str(i): round(end - start, 12) for i, (start, end, _) in enumerate(phases)}
    split = largest_remainder(train_tokens, lengths)
    return [split[str(i)] for i in range(len(phases))]


def plan_schedule(tokens: Mapping[str, int], phases: Sequence[tuple[float, float, float]],
                  train_tokens: int, *, max_epochs: float = 4.0,
                  cap: bool = False) -> MixturePlan:
    """Weights, tokens per phase and domain, and epochs for `phases` = [(start, end, tau)]."""
    names = list(tokens)
    active = [n for n in names if tokens[n] > 0]
    budgets = phase_budgets(train_tokens, phases)
    plan = MixturePlan(dict(tokens), train_tokens, max_epochs, cap, [], {}, {})
    if not active:
        plan.warnings.append("no kept tokens in any domain: nothing to weight")
        zeros = dict.fromkeys(names, 0.0)
        plan.phases = [PhasePlan(s, e, t, b, zeros, zeros, dict.fromkeys(names, 0))
                       for (s, e, t), b in zip(phases, budgets, strict=True)]
        plan.drawn, plan.epochs = dict.fromkeys(names, 0), dict.fromkeys(names, 0.0)
        return plan
    temps = [temperature_weights(tokens, tau) for _, _, tau in phases]
    weights = [dict(p) for p in temps]
    if cap:
        plan.capped, plan.all_capped = _apply_cap(weights, temps, budgets, tokens, active,
                                                  max_epochs)
        if plan.all_capped:
            shares = temperature_weights(tokens, 1.0)
            weights = [dict(shares) for _ in phases]
    locked = set() if plan.all_capped else set(plan.capped)
    splits = _round_plan(budgets, weights, locked)
    for (start, end, tau), budget, temp, weight, split in zip(phases, budgets, temps, weights,
                                                              splits, strict=True):
        plan.phases.append(PhasePlan(start, end, tau, budget, weight, temp, split))
    plan.drawn = {n: sum(p.domain_tokens[n] for p in plan.phases) for n in names}
    plan.epochs = {n: plan.drawn[n] / tokens[n] if tokens[n] else 0.0 for n in names}
    plan.warnings = _warnings(plan)
    return plan


def _apply_cap(weights: list[dict[str, float]], temps: list[dict[str, float]],
               budgets: list[int], tokens: Mapping[str, int], active: list[str],
               max_epochs: float) -> tuple[list[str], bool]:
    """UniMax-style cap, in place on `weights`; returns (capped domains, all capped?)."""
    capped: list[str] = []
    while True:
        totals = {n: math.fsum(b * w[n] for b, w in zip(budgets, weights, strict=True))
                  for n in active}
        over = [n for n in active if n not in capped
                and totals[n] > max_epochs * tokens[n] * (1 + REL_TOL)]
        if not over:
            return capped, False
        capped += over
        free = [n for n in active if n not in capped]
        if not free:
            return capped, True
        for name in capped:
            scale = max_epochs * tokens[name] / totals[name]
            for w in weights:
                w[name] *= scale
        for w, temp in zip(weights, temps, strict=True):
            left = 1.0 - math.fsum(w[n] for n in capped)
            mass = math.fsum(temp[n] for n in free)
            for name in free:
                w[name] = left * temp[name] / mass


def _round_plan(budgets: list[int], weights: list[dict[str, float]],
                locked: set[str]) -> list[dict[str, int]]:
    """Integer tokens per phase and domain; each phase adds up to its budget. A capped
    (`locked`) domain's total is rounded down once (so it never passes its cap) and split over
    the phases by largest remainder; the other domains share what each phase has left."""
    names = list(weights[0]) if weights else []
    parts: list[dict[str, int]] = [{} for _ in budgets]
    for name in sorted(locked):
        reals = {str(k): b * w[name] for k, (b, w) in enumerate(zip(budgets, weights,
                                                                    strict=True))}
        total = math.floor(math.fsum(reals.values()) + 1e-6)
        for key, n in largest_remainder(total, reals).items():
            parts[int(key)][name] = n
    for budget, weight, part in zip(budgets, weights, parts, strict=True):
        while sum(part.values()) > budget:  # rounding overshot a phase that is nearly all capped
            part[max(part, key=lambda n: (part[n], n))] -= 1
        rest = {n: w for n, w in weight.items() if n not in locked}
        left = budget - sum(part.values())
        if left and not any(w > 0 for w in rest.values()):
            rest = {n: weight[n] for n in locked}  # only capped domains can take it
        for name, n in (largest_remainder(left, rest) if rest else {}).items():
            part[name] = part.get(name, 0) + n
    return [{n: part.get(n, 0) for n in names} for part in parts]


def _warnings(plan: MixturePlan) -> list[str]:
    out = []
    limit = plan.max_epochs
    if plan.all_capped:
        total = sum(plan.tokens.values())
        epochs = plan.train_tokens / total
        out.append(f"every domain exceeds max_epochs={limit:g}: the budget of "
                   f"{plan.train_tokens:,} tokens is {epochs:.2f} epochs of all kept tokens "
                   f"({total:,}); the weights fall back to the token shares, so every domain "
                   f"is repeated about {epochs:.2f} times")
    elif plan.capped:
        for name in plan.capped:
            out.append(f"{name}: capped at max_epochs={limit:g} ({plan.drawn[name]:,} tokens "
                       "drawn); the rest of its share went to the other domains")
    # Under a cap, rounding may add up to one token per phase to an uncapped domain.
    slack = len(plan.phases) if plan.cap else 0
    for name, epochs in plan.epochs.items():
        if plan.all_capped or name in plan.capped:
            continue
        if plan.drawn[name] > limit * plan.tokens[name] * (1 + REL_TOL) + slack:
            hint = "" if plan.cap else " (mixture.cap: true caps it)"
            out.append(f"{name}: repeated {epochs:.2f} epochs over training, more than "
                       f"max_epochs={limit:g}{hint}")
    return out
