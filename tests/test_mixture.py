"""Domain mixture, pure parts: temperature weights, integer splits, schedules, caps, config."""

from __future__ import annotations

import math

import pytest

from siftline.config import load_config
from siftline.errors import ConfigError
from siftline.mixture.config import parse_schedule, parse_token_count
from siftline.mixture.schedule import phase_budgets, plan_schedule
from siftline.mixture.weights import largest_remainder, temperature_weights

COUNTS = {"books": 30_000, "code": 1_000, "web": 1_000_000}
COOLDOWN = [(0.0, 0.5, 5.0), (0.5, 1.0, 1.0)]


# -- temperature weights ----------------------------------------------------------------------
def test_tau_one_gives_the_token_shares() -> None:
    weights = temperature_weights(COUNTS, 1.0)
    total = sum(COUNTS.values())
    for name, n in COUNTS.items():
        assert weights[name] == pytest.approx(n / total, rel=1e-12)


def test_weights_follow_the_formula_and_sum_to_one() -> None:
    for tau in (0.5, 1.0, 3.33, 5.0, 100.0):
        weights = temperature_weights(COUNTS, tau)
        powered = {name: n ** (1 / tau) for name, n in COUNTS.items()}
        for name in COUNTS:
            assert weights[name] == pytest.approx(powered[name] / sum(powered.values()),
                                                  rel=1e-12)
        assert math.fsum(weights.values()) == pytest.approx(1.0, abs=1e-12)


def test_growing_tau_approaches_uniform() -> None:
    spreads = []
    for tau in (1.0, 2.0, 5.0, 20.0, 1e3, 1e7):
        weights = temperature_weights(COUNTS, tau)
        spreads.append(max(weights.values()) - min(weights.values()))
        assert weights["web"] >= weights["books"] >= weights["code"]  # order is kept
    assert spreads == sorted(spreads, reverse=True) and spreads[0] > 0.9
    assert spreads[-1] < 1e-5  # tau = 1e7: uniform to 5 decimals


def test_huge_counts_do_not_overflow_and_empty_domains_get_nothing() -> None:
    weights = temperature_weights({"a": 10**15, "b": 10**3, "empty": 0}, 0.05)
    assert weights["empty"] == 0.0 and weights["a"] == pytest.approx(1.0)
    assert math.isfinite(weights["b"]) and math.fsum(weights.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        temperature_weights(COUNTS, 0.0)
    with pytest.raises(ValueError):
        temperature_weights({"a": 0}, 1.0)


# -- exact integer splits ---------------------------------------------------------------------
def test_largest_remainder_adds_up_and_breaks_ties_by_order() -> None:
    assert largest_remainder(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder(10, {"c": 1, "b": 1, "a": 1}) == {"c": 4, "b": 3, "a": 3}
    assert largest_remainder(7, {"x": 0.5, "y": 0.3, "z": 0.2}) == {"x": 4, "y": 2, "z": 1}
    shares = temperature_weights(COUNTS, 3.33)
    for total in (0, 1, 2, 999_999, 10**12 + 7):
        split = largest_remainder(total, shares)
        assert sum(split.values()) == total
        assert all(abs(split[n] - total * shares[n]) < 1 for n in shares)


def test_schedule_tokens_add_up_to_the_budget_exactly() -> None:
    for budget in (1, 999, 1_000_003, 7 * 10**11 + 1):
        plan = plan_schedule(COUNTS, COOLDOWN, budget)
        assert [p.tokens for p in plan.phases] == phase_budgets(budget, COOLDOWN)
        assert sum(p.tokens for p in plan.phases) == budget
        for phase in plan.phases:
            assert sum(phase.domain_tokens.values()) == phase.tokens
        assert sum(plan.drawn.values()) == budget
    thirds = [(0.0, 1 / 3, 2.0), (1 / 3, 2 / 3, 2.0), (2 / 3, 1.0, 2.0)]
    assert phase_budgets(10, thirds) == [4, 3, 3]
    again = plan_schedule(COUNTS, COOLDOWN, 1_000_003)
    assert again == plan_schedule(COUNTS, COOLDOWN, 1_000_003)  # deterministic


# -- epochs, warnings, caps on hand-made counts -----------------------------------------------
def test_epochs_by_hand() -> None:
    counts = {"a": 1_000, "b": 100}
    plan = plan_schedule(counts, [(0.0, 1.0, 1.0)], 2_200)  # tau 1: proportional
    assert plan.drawn == {"a": 2_000, "b": 200}
    assert plan.epochs == {"a": 2.0, "b": 2.0} and plan.warnings == []
    cooldown = plan_schedule(counts, COOLDOWN, 2_000)
    p5 = {"a": 1000 ** 0.2 / (1000 ** 0.2 + 100 ** 0.2)}
    p5["b"] = 1 - p5["a"]
    first, second = cooldown.phases
    assert (first.tokens, second.tokens) == (1_000, 1_000)
    assert first.domain_tokens == {"a": round(1000 * p5["a"]), "b": round(1000 * p5["b"])}
    assert second.domain_tokens == {"a": 909, "b": 91}  # 1000 * 10/11, 1000 * 1/11
    assert cooldown.epochs["b"] == pytest.approx((round(1000 * p5["b"]) + 91) / 100)


def test_warns_about_domains_repeated_past_the_limit() -> None:
    plan = plan_schedule(COUNTS, COOLDOWN, 1_031_000)  # one pass over all kept tokens
    assert plan.epochs["code"] > 4 and plan.epochs["web"] < 1
    assert plan.epochs["books"] > 4
    assert len(plan.warnings) == 2
    assert plan.warnings[0].startswith("books: repeated") and "max_epochs=4" in plan.warnings[0]
    assert plan.warnings[1].startswith("code: repeated")
    relaxed = plan_schedule(COUNTS, COOLDOWN, 1_031_000, max_epochs=1000)
    assert relaxed.warnings == []


def test_cap_gives_capped_domains_limit_times_n_and_the_rest_by_weight() -> None:
    """Nearly uniform weights: code (100 epochs) is capped first; what it frees pushes books
    past its cap in the second round; web takes the rest."""
    plan = plan_schedule(COUNTS, [(0.0, 1.0, 1e9)], 300_000, max_epochs=4, cap=True)
    assert plan.capped == ["code", "books"] and not plan.all_capped
    assert plan.drawn == {"books": 120_000, "code": 4_000, "web": 176_000}
    assert plan.phases[0].weights["web"] == pytest.approx(176_000 / 300_000)
    assert [w.split(":")[0] for w in plan.warnings] == ["code", "books"]
    uncapped = plan_schedule(COUNTS, [(0.0, 1.0, 1e9)], 300_000, max_epochs=4)
    assert uncapped.capped == [] and uncapped.drawn["code"] == 100_000


def test_cap_under_cooldown_keeps_phase_budgets_and_caps_totals() -> None:
    plan = plan_schedule(COUNTS, COOLDOWN, 1_031_000, max_epochs=2, cap=True)
    assert set(plan.capped) == {"books", "code"}
    assert plan.drawn["code"] == 2_000 and plan.drawn["books"] == 60_000
    assert sum(plan.drawn.values()) == 1_031_000
    for phase, budget in zip(plan.phases, phase_budgets(1_031_000, COOLDOWN), strict=True):
        assert sum(phase.domain_tokens.values()) == budget
        assert math.fsum(phase.weights.values()) == pytest.approx(1.0)
    # the capped domains keep their shape over the phases: more in the tau = 5 phase
    assert plan.phases[0].domain_tokens["code"] > plan.phases[1].domain_tokens["code"]


def test_cap_that_no_allocation_can_meet_says_so() -> None:
    plan = plan_schedule(COUNTS, COOLDOWN, 10 * 1_031_000, max_epochs=4, cap=True)
    assert plan.all_capped and sorted(plan.capped) == sorted(COUNTS)
    assert plan.epochs == pytest.approx(dict.fromkeys(COUNTS, 10.0), rel=1e-5)
    assert sum(plan.drawn.values()) == 10 * 1_031_000
    assert len(plan.warnings) == 1 and plan.warnings[0].startswith("every domain exceeds")


def test_no_kept_tokens_gives_zeros_and_a_warning() -> None:
    plan = plan_schedule({"a": 0}, COOLDOWN, 100)
    assert plan.drawn == {"a": 0} and "no kept tokens" in plan.warnings[0]


# -- configuration ----------------------------------------------------------------------------
def test_default_mixture_config_is_the_cooldown_schedule() -> None:
    cfg = load_config({}).mixture
    assert cfg.enabled and cfg.taus() == COOLDOWN
    assert (cfg.max_epochs, cfg.cap, cfg.chars_per_token, cfg.train_tokens) == (4.0, False,
                                                                                4.0, None)


def test_token_counts_and_schedules_parse() -> None:
    assert parse_token_count("1B") == 10**9 and parse_token_count("2.5T") == 2_500 * 10**9
    assert parse_token_count("500m") == 500 * 10**6 and parse_token_count("1e6") == 10**6
    assert parse_token_count(12) == 12
    assert parse_schedule("0:0.5:5,0.5:1:1") == [{"start": 0.0, "end": 0.5, "tau": 5.0},
                                                 {"start": 0.5, "end": 1.0, "tau": 1.0}]
    assert parse_schedule("3.33") == [{"start": 0.0, "end": 1.0, "tau": 3.33}]
    cfg = load_config({}, {"mixture.schedule": "0:0.3:10,0.3:1:2",
                           "mixture.train_tokens": "2B"}).mixture
    assert cfg.taus() == [(0.0, 0.3, 10.0), (0.3, 1.0, 2.0)] and cfg.train_tokens == 2 * 10**9


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"mixture.schedule": "0:0.5:5,0.6:1:1"}, "mixture.schedule: Value error, [1].start is 0.6"
                                              " but [0].end is 0.5: a gap"),
    ({"mixture.schedule": "0:0.5:5,0.4:1:1"}, "an overlap"),
    ({"mixture.schedule": "0.1:1:5"}, "the schedule must start at 0"),
    ({"mixture.schedule": "0:0.9:5"}, "the schedule must end at 1"),
    ({"mixture.schedule": "0:0.5:5,0.5:0.5:1,0.5:1:1"}, "end must be after start"),
    ({"mixture.schedule": "0:1"}, "expected START:END:TAU"),
    ({"mixture.schedule": [{"start": 0, "end": 1, "tau": 0}]},
     "mixture.schedule.0.tau: Input should be greater than 0"),
    ({"mixture.schedule": [{"start": 0, "end": 1, "tau": 1, "temp": 2}]},
     "mixture.schedule.0.temp: unknown key"),
    ({"mixture.max_epochs": 0}, "mixture.max_epochs: Input should be greater than 0"),
    ({"mixture.train_tokens": "lots"}, "mixture.train_tokens: Value error, 'lots' is not a "
                                       "token count"),
    ({"mixture.chars_per_token": -1}, "mixture.chars_per_token"),
    ({"mixture.captain": True}, "mixture.captain: unknown key"),
])
def test_bad_mixture_config_names_the_key(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({}, overrides)
    assert expected in str(info.value)


# -- drawing documents for mixed shards -------------------------------------------------------
def test_draw_domain_repeats_whole_passes_then_stops_nearest_the_target() -> None:
    import numpy as np

    from siftline.mixture.mix import draw_domain

    tokens = np.full(10, 10.0)  # 100 tokens per pass
    picks, passes = draw_domain(tokens, 254, np.random.default_rng(0))
    assert picks.size == 25 and passes.tolist() == [0] * 10 + [1] * 10 + [2] * 5
    assert sorted(picks[:10].tolist()) == sorted(picks[10:20].tolist()) == list(range(10))
    assert picks[:10].tolist() != list(range(10))  # shuffled
    assert draw_domain(tokens, 256, np.random.default_rng(0))[0].size == 26
    again = draw_domain(tokens, 254, np.random.default_rng(0))[0]
    assert again.tolist() == picks.tolist()
    assert draw_domain(tokens, 0, np.random.default_rng(0))[0].size == 0
    assert draw_domain(np.zeros(3), 50, np.random.default_rng(0))[0].size == 0
