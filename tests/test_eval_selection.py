"""eval-selection: the efficiency factor, budget matching, determinism, and the method on a
two-domain mixture where the target is one domain's held-out text."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import siftline
import siftline.cli.main as cli
from siftline.color.target import is_held_out
from siftline.config import load_config
from siftline.errors import ConfigError
from siftline.evaluation import efficiency_factor, evaluate_selection
from siftline.evaluation.pool import load_pool
from siftline.io.storage import Storage

WORDS_A = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
WORDS_B = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "grey", "brown"]
TINY = {"vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 32}


# -- the efficiency factor on curves with known answers ----------------------------------------
def _log_linear(budgets: list[float], scale: float) -> list[float]:
    """loss(b) = 5 - 0.5 ln(scale * b): `scale` times more data-efficient than scale 1."""
    return [5 - 0.5 * math.log(scale * b) for b in budgets]


@pytest.mark.parametrize("k", [1.0, 1.5, 3.0, 7.5])
def test_efficiency_factor_is_exact_on_log_linear_curves(k: float) -> None:
    budgets = [1e3, 2e3, 4e3, 8e3, 16e3]
    eff = efficiency_factor(budgets, _log_linear(budgets, k), _log_linear(budgets, 1.0))
    assert eff.factor == pytest.approx(k, rel=1e-9)
    assert eff.bound == "exact"  # the crossing lies inside the sampled budgets
    assert eff.tokens_to_target == pytest.approx(16e3 / k, rel=1e-9)


def test_efficiency_bounds_and_worse_than_random() -> None:
    budgets = [1e3, 2e3, 4e3]
    random_curve = _log_linear(budgets, 1.0)
    # reaches random's final loss before the first budget: only a lower bound is known
    ahead = efficiency_factor(budgets, _log_linear(budgets, 100.0), random_curve)
    assert ahead.bound == "lower" and ahead.factor == pytest.approx(4.0)
    # half as efficient: random reaches the selection's best loss at half the largest budget
    behind = efficiency_factor(budgets, _log_linear(budgets, 0.5), random_curve)
    assert behind.bound == "exact" and behind.factor == pytest.approx(0.5)
    with pytest.raises(ValueError, match="ascending"):
        efficiency_factor([2e3, 1e3], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        efficiency_factor([1e3, 2e3], [1, float("nan")], [1, 1])


# -- the method end to end --------------------------------------------------------------------
def _mixture(folder: Path, n: int = 320, seed: int = 0) -> Path:
    """Domain `a` (a quarter) and `b` with disjoint vocabularies."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words, domain = (WORDS_A, "a") if i % 4 == 0 else (WORDS_B, "b")
        text = " ".join(rng.choice(words) for _ in range(rng.randint(15, 50)))
        lines.append(json.dumps({"id": f"d{i:04d}", "text": text, "domain": domain}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "corpus.jsonl"


def _config(corpus: Path, out: Path) -> dict[str, Any]:
    return {
        "input": {"paths": [str(corpus)]},
        "output": {"path": str(out)},
        "executor": {"kind": "local"},
        "stages": {"exact_dedupe": {"enabled": True}, "color_filter": {
            "enabled": True, "tau": 4,
            "target": {"domain": "a", "holdout_fraction": 0.3},
            "train": {"model": TINY,
                      "prior": {"tokens": 30_000, "batch_size": 8, "threads": 1,
                                "eval_every": 1000},
                      "conditional": {"epochs": 2, "batch_size": 8, "threads": 1}},
            "score": {"device": "cpu", "threads": 1}, "plot": False}},
        "evaluation": {"budgets": [2048, 4096, 8192], "color_taus": [4],
                       "model": TINY, "tokenizer_bytes": 100_000,
                       "train": {"batch_size": 8, "lr": 3e-3, "threads": 1, "device": "cpu",
                                 "eval_every": 1000},
                       "score": {"device": "cpu", "threads": 1}},
    }


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    root = tmp_path_factory.mktemp("eval")
    config = load_config(_config(_mixture(root / "in"), root / "out"))
    siftline.run(config)
    return root / "out", config, evaluate_selection(str(root / "out"), config)


@pytest.mark.slow
def test_report_contract_and_matched_budgets(evaluated) -> None:
    out, _, report = evaluated
    saved = json.loads((out / "eval" / "report.json").read_text())
    assert saved == report
    assert (out / "eval" / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert list(report["methods"]) == ["random", "run", "color:4"]
    random_runs = report["methods"]["random"]
    assert random_runs["efficiency_factor"] == pytest.approx(1.0)
    for name, method in report["methods"].items():
        assert method["budgets"] == [2048, 4096, 8192], name
        # every method trains exactly the same number of tokens at each budget
        assert method["train_tokens"] == random_runs["train_tokens"], name
        assert all(math.isfinite(x) for x in method["target_loss"])
        assert method["target_loss"][-1] < method["target_loss"][0], name  # training helps
    # the random sample holds the largest budget without repeating documents
    assert random_runs["tokens"] >= 8192 and max(random_runs["epochs"]) <= 1.0


@pytest.mark.slow
def test_selection_for_the_target_beats_random(evaluated) -> None:
    """The target is held-out domain-`a` text; CoLoR-Filter picks `a`, random mostly `b`."""
    _, _, report = evaluated
    color, rand = report["methods"]["color:4"], report["methods"]["random"]
    assert color["target_loss"][-1] < rand["target_loss"][-1]
    assert color["efficiency_factor"] > 1.0 and color["efficiency"]["bound"] == "exact"


@pytest.mark.slow
def test_target_documents_never_enter_the_pool(evaluated) -> None:
    out, config, report = evaluated
    target = config.stages.color_filter.target
    pool = load_pool(str(out), config, Storage(), target)
    assert pool.held_out > 0 and report["pool"]["held_out_target"] == pool.held_out
    assert not any(is_held_out(i, d, target) for i, d in zip(
        pool.table.column("id").to_pylist(), pool.table.column("domain").to_pylist(),
        strict=True))
    assert report["pool"]["documents"] == pool.candidates - pool.held_out


@pytest.mark.slow
def test_same_seed_same_report_and_cli(evaluated, tmp_path: Path) -> None:
    out, config, report = evaluated
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("eval"))
    result = CliRunner().invoke(cli.app, ["eval-selection", "--output", str(copy), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == report
    assert (copy / "eval" / "report.json").read_bytes() == (out / "eval" /
                                                           "report.json").read_bytes()
    table = CliRunner().invoke(cli.app, ["eval-selection", "--output", str(copy)])
    assert table.exit_code == 0 and "color:4" in table.output and "Target loss" in table.output


def test_missing_target_is_a_config_error(tmp_path: Path) -> None:
    config = load_config({"output": {"path": str(tmp_path / "o")}})
    with pytest.raises(ConfigError, match="evaluation.target"):
        evaluate_selection(str(tmp_path / "o"), config)
    with pytest.raises(ConfigError, match="evaluation.budgets"):
        load_config({"evaluation": {"budgets": [100, 50]}})


def _texts(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(15, 50))) for _ in range(n)]


def _jsonl(path: Path, texts: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_two_datasets_selected_against_baseline(tmp_path: Path) -> None:
    """No run: a selected dataset (all `a`) against random documents of a mixed baseline."""
    import yaml

    selected = _jsonl(tmp_path / "selected.jsonl", _texts(WORDS_A, 80, 1))
    baseline = _jsonl(tmp_path / "baseline.jsonl",
                      _texts(WORDS_A, 40, 2) + _texts(WORDS_B, 200, 3))
    (tmp_path / "target.txt").write_text("\n\n".join(_texts(WORDS_A, 20, 4)), encoding="utf-8")
    evaluation = _config(tmp_path / "unused.jsonl", tmp_path / "o")["evaluation"]
    evaluation.update({"selected": [selected], "baseline": [baseline], "budgets": [2048, 4096],
                       "target": {"paths": [str(tmp_path / "target.txt")]}})
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({"evaluation": evaluation}))
    result = CliRunner().invoke(cli.app, ["eval-selection", str(tmp_path / "eval.yaml"),
                                          "--output", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report["methods"]) == ["random", "selected"]
    assert report["pool"] == {"documents": 240}
    sel, rand = report["methods"]["selected"], report["methods"]["random"]
    assert sel["documents"] == 80 and sel["train_tokens"] == rand["train_tokens"]
    assert sel["target_loss"][-1] < rand["target_loss"][-1]
    with pytest.raises(ConfigError, match="evaluation"):
        load_config({"evaluation": {"selected": [selected]}})


# -- PreSelect and combined methods on a hand-made pool ----------------------------------------
def test_preselect_char_budget_and_rank_average() -> None:
    import pyarrow as pa

    from siftline.evaluation.methods import Method, choose, methods_for, rank_percentile
    from siftline.evaluation.pool import Pool

    table = pa.table({
        "id": ["a", "b", "c", "d", "e"], "part": pa.array([0] * 5, pa.int32()),
        "row": pa.array(range(5), pa.int64()), "run_kept": [True, False, True, False, False],
        "n_chars": pa.array([10, 30, 20, 40, 0], pa.int64()),
        "color_score": [0.1, 0.5, 0.3, None, 0.2],
        "preselect_score": [0.9, 0.1, 0.8, 0.7, 0.7]})
    pool = Pool(table, candidates=5, held_out=0)
    names = [m.name for m in methods_for([2.0], [0.5], True, True, pool)]
    assert names == ["run", "color:2", "preselect:0.5", "combined:2"]
    assert choose(pool, Method("run")).tolist() == [0, 2]
    assert choose(pool, Method("color", 2.0)).tolist() == [1, 2]  # top floor(5/2), null last
    # by preselect: a (10), c (20), then d/e tie at 0.7 broken by id: d (40) would pass 50 chars
    assert choose(pool, Method("preselect", 0.5)).tolist() == [0, 2]
    assert choose(pool, Method("preselect", 1.0)).tolist() == [0, 2, 3, 4, 1]
    ranks = rank_percentile(table.column("preselect_score"))
    assert ranks.tolist() == [1.0, 0.0, 0.75, 0.375, 0.375]  # ties share their mean rank
    # color ranks a .25 b 1 c .75 d 0 e .5; means: a .625, b .5, c .75, d .1875, e .4375
    assert choose(pool, Method("combined", 2.0)).tolist() == [2, 0]


@pytest.mark.slow
def test_multiple_choice_target_reports_accuracy(tmp_path: Path) -> None:
    selected = _jsonl(tmp_path / "selected.jsonl", _texts(WORDS_A, 40, 1))
    baseline = _jsonl(tmp_path / "baseline.jsonl", _texts(WORDS_B, 60, 3))
    questions = [{"query": " ".join(_texts(WORDS_A, 1, 10 + i)[0].split()[:8]),
                  "choices": ["alpha beta", "red green", "blue grey"], "gold": 0}
                 for i in range(12)]
    target = _jsonl(tmp_path / "eval.jsonl", [])
    Path(target).write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    evaluation = _config(tmp_path / "unused.jsonl", tmp_path / "o")["evaluation"]
    evaluation.update({"selected": [selected], "baseline": [baseline], "budgets": [2048],
                       "target": {"paths": [target]}})
    config = load_config({"output": {"path": str(tmp_path / "o")}, "evaluation": evaluation})
    report = evaluate_selection(str(tmp_path / "o"), config)
    assert report["target"]["questions"] == 12
    assert report["target"]["chance"] == pytest.approx(1 / 3)
    for method in report["methods"].values():
        assert len(method["accuracy"]) == 1 and 0.0 <= method["accuracy"][0] <= 1.0
