"""Temperature sampling weights and exact integer splits: pure functions over token counts.

p_i(tau) = n_i^(1/tau) / sum_j n_j^(1/tau) ("Upsample or Upweight?"; mT5 uses tau ~ 3.33).
Computed in log space so that billions of tokens at a small tau cannot overflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def temperature_weights(tokens: Mapping[str, int], tau: float) -> dict[str, float]:
    """Sampling weight of each domain at temperature `tau`: 1 gives the token shares, larger
    values flatten them towards uniform. Domains without tokens get 0; keys keep their order."""
    if tau <= 0 or not math.isfinite(tau):
        raise ValueError(f"tau must be a positive number, got {tau}")
    if any(n < 0 for n in tokens.values()):
        raise ValueError("token counts cannot be negative")
    logs = {name: math.log(n) / tau for name, n in tokens.items() if n > 0}
    if not logs:
        raise ValueError("no domain has any tokens")
    top = max(logs.values())
    powers = {name: math.exp(value - top) for name, value in logs.items()}
    total = math.fsum(powers.values())
    return {name: powers.get(name, 0.0) / total for name in tokens}


def largest_remainder(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Split the integer `total` in proportion to `shares` so the parts add up exactly
    (Hamilton's method: floors first, then one more to the largest remainders; ties go to the
    earlier key, so the result is deterministic)."""
    if total < 0:
        raise ValueError(f"cannot split a negative total {total}")
    weight = math.fsum(shares.values())
    if not shares or weight <= 0:
        if total:
            raise ValueError("cannot split a positive total over zero shares")
        return {name: 0 for name in shares}
    exact = {name: total * share / weight for name, share in shares.items()}
    parts = {name: math.floor(value) for name, value in exact.items()}
    left = total - sum(parts.values())
    rank = {name: i for i, name in enumerate(exact)}
    order = sorted(exact, key=lambda n: (-(exact[n] - parts[n]), rank[n]))
    for name in order[:left]:
        parts[name] += 1
    return parts
