"""CoLoR-Filter: the score formula, the global cut, re-selection, and the method on a mixture."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import uniform_model

import siftline
from siftline.config import ColorFilterConfig, load_config
from siftline.errors import ConfigError
from siftline.lm.tokenizer import train_tokenizer
from siftline.selection.cut import CANDIDATE_SCHEMA, CutRule, compute_cut, selected_mask
from siftline.stages.color_filter import SPEC, ColorScore

WORDS_A = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
WORDS_B = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "grey", "brown"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([" ".join(WORDS_A + WORDS_B)] * 20, vocab_size=280)


def test_score_is_prior_minus_conditional_mean_nll(tokenizer, tmp_path: Path) -> None:
    prior = uniform_model(tmp_path / "prior", 512, tokenizer)
    cond = uniform_model(tmp_path / "cond", 300, tokenizer)
    stage = ColorScore(ColorFilterConfig(score={"device": "cpu"}), prior, cond)
    table = siftline.documents.make_table(
        ["a", "b", "c"], ["alpha beta gamma " * 30, "red", "   "], ["x"] * 3, ["s"] * 3)
    table = siftline.documents.add_local_reasons(table, 1_000_000)
    out = stage(table)
    assert out.column("color_prior_nll").to_pylist()[:2] == pytest.approx([math.log(512)] * 2)
    assert out.column("color_cond_nll").to_pylist()[:2] == pytest.approx([math.log(300)] * 2)
    assert out.column("color_score").to_pylist()[:2] == pytest.approx([math.log(512 / 300)] * 2)
    assert out.column("color_n_tokens").to_pylist()[1] == len(tokenizer.encode_batch(["red"])[0])
    # the empty row was dropped while reading: never scored
    assert out.column("color_score").to_pylist()[2] is None


def _candidates(scores: list[float | None], ids: list[str], parts: list[int],
                domains: list[str] | None = None, tokens: list[int] | None = None) -> pa.Table:
    n = len(scores)
    return pa.table({
        "score": scores, "id": ids, "part": parts, "row": list(range(n)),
        "domain": domains or ["d"] * n, "tokens": tokens or [10] * n, "chars": [40] * n,
    }, schema=CANDIDATE_SCHEMA)


def rule_of(**color) -> CutRule:
    """The cut rule the stage reads off its config section."""
    return SPEC.cut.rule(load_config({"stages": {"color_filter": color}}))


def _part_table(cands: pa.Table, part: int) -> pa.Table:
    rows = cands.filter(pa.compute.equal(cands.column("part"), part))
    return pa.table({"id": rows.column("id"), "domain": rows.column("domain"),
                     "color_score": rows.column("score")})


@pytest.mark.parametrize("tau", [1, 2, 3, 4, 7, 16, 64])
def test_tau_keeps_exactly_floor_n_over_tau_with_ties_by_id(tau: int) -> None:
    rng = random.Random(tau)
    n = 101
    scores = [rng.choice([0.5, 1.0, 1.5, None]) for _ in range(n)]
    ids = [f"id{rng.randrange(40):03d}" for _ in range(n)]  # repeated ids too
    parts = sorted(rng.randrange(3) for _ in range(n))
    # rows are numbered within each part, as finalize sees them
    rows, seen = [], {}
    for p in parts:
        rows.append(seen.get(p, 0))
        seen[p] = seen.get(p, 0) + 1
    cands = _candidates(scores, ids, parts).set_column(3, "row", pa.array(rows, pa.int64()))
    cut = compute_cut(cands, rule_of(tau=tau))
    scored = sum(s is not None for s in scores)
    expected = min(scored, n // tau)
    kept = sum(int(selected_mask(_part_table(cands, p), p, cut, "color_score").sum())
               for p in range(3))
    assert cut.groups["*"].kept == expected == kept
    order = sorted((i for i in range(n) if scores[i] is not None),
                   key=lambda i: (-scores[i], ids[i], parts[i], rows[i]))
    want = {(parts[i], rows[i]) for i in order[:expected]}
    got = set()
    for p in range(3):
        mask = selected_mask(_part_table(cands, p), p, cut, "color_score")
        got |= {(p, r) for r in np.flatnonzero(mask)}
    assert got == want


def test_token_budget_and_per_domain() -> None:
    cands = _candidates([5, 4, 3, 2, 1, 0], list("abcdef"), [0] * 6,
                        domains=["x", "x", "x", "y", "y", "y"], tokens=[10, 20, 30, 10, 10, 10])
    cut = compute_cut(cands, rule_of(tau=None, budget_tokens=35))
    assert cut.groups["*"].kept == 2  # 10 + 20 <= 35 < 60
    per = compute_cut(cands, rule_of(tau=3, per_domain=True))
    assert {k: g.kept for k, g in per.groups.items()} == {"x": 1, "y": 1}
    mask = selected_mask(_part_table(cands, 0), 0, per, "color_score")
    assert mask.tolist() == [True, False, False, True, False, False]


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="stages.color_filter"):
        load_config({"stages": {"color_filter": {"enabled": True, "prior": "/x"}}})
    with pytest.raises(ConfigError, match="target"):
        load_config({"stages": {"color_filter": {"enabled": True}}})
    with pytest.raises(ConfigError, match="not a model folder"):
        siftline.run({"stages": {"color_filter": {"enabled": True, "prior": "/nonexistent/p",
                                                  "conditional": "/nonexistent/c"}},
                      "executor": {"kind": "local"}})


def _mixture(folder: Path, n: int = 240, seed: int = 0) -> Path:
    """Two domains of disjoint vocabularies; `a` is a quarter of the corpus."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = WORDS_A if i % 4 == 0 else WORDS_B
        text = " ".join(rng.choice(words) for _ in range(rng.randint(15, 50)))
        lines.append(json.dumps({"id": f"d{i:04d}", "text": text,
                                 "domain": "a" if words is WORDS_A else "b"}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "corpus.jsonl"


def _trained_models_config(corpus: Path, out: Path, **color) -> dict:
    tiny = {"vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 64}
    return {
        "input": {"paths": [str(corpus)]},
        "output": {"path": str(out)},
        "executor": {"kind": "local"},
        "stages": {"exact_dedupe": {"enabled": False}, "color_filter": {
            "enabled": True,
            "target": {"domain": "a", "holdout_fraction": 0.3},
            "train": {"model": tiny,
                      "prior": {"tokens": 40_000, "batch_size": 8, "threads": 1,
                                "eval_every": 1000},
                      "conditional": {"epochs": 2, "batch_size": 8, "threads": 1,
                                      "lr": 1e-3}},
            "score": {"device": "cpu", "threads": 1},
            **color}},
    }


@pytest.mark.slow
def test_method_selects_the_target_domain_and_reselects_without_scoring(tmp_path: Path,
                                                                        monkeypatch) -> None:
    corpus = _mixture(tmp_path / "in")
    config = _trained_models_config(corpus, tmp_path / "out", tau=4)
    result = siftline.run(config)
    stats = result.stats
    kept_a, kept = stats["by_domain"]["a"]["kept"], stats["kept"]
    assert kept == 240 // 4
    assert kept_a / kept >= 0.9, stats["by_domain"]  # random selection would give 0.25
    assert stats["dropped"] == {"color_filter": 240 - kept}
    assert (tmp_path / "out" / "plots" / "color_score.png").read_bytes()[:4] == b"\x89PNG"
    trained = (tmp_path / "out" / "models" / "prior" / "train_result.json").stat().st_mtime_ns

    # re-selection reads the persisted scores only: no model is loaded
    def no_models(*args, **kwargs):
        raise AssertionError("re-selection must not score")

    monkeypatch.setattr("siftline.lm.scorer.DocumentScorer.from_folder", no_models)
    new = siftline.select(str(tmp_path / "out"),
                          overrides={"stages.color_filter.tau": 8, "executor.kind": "local"})
    assert new["kept"] == 240 // 8
    assert new["color_filter"]["cut"]["amount"] == 8
    monkeypatch.undo()

    # a fresh run into the same folder reuses the trained models
    again = siftline.run(config, overwrite=True)
    assert again.stats["kept"] == kept
    after = (tmp_path / "out" / "models" / "prior" / "train_result.json").stat().st_mtime_ns
    assert after == trained


@pytest.mark.slow
def test_target_option_replaces_the_configured_target(tmp_path: Path) -> None:
    """`siftline run --target FILE` (issue #5's promise): the conditional model is fine-tuned
    on that file's paragraphs instead of the config's held-out domain."""
    from typer.testing import CliRunner

    from siftline.cli.main import app
    from siftline.color.target import target_fingerprint

    corpus = _mixture(tmp_path / "in")
    target = tmp_path / "target.txt"
    paragraphs = [" ".join(WORDS_A[i:] + WORDS_A[:i]) for i in range(3)]
    target.write_text("\n\n".join(paragraphs) + "\n")
    config = tmp_path / "job.yaml"
    config.write_text(json.dumps(_trained_models_config(corpus, tmp_path / "out", tau=4)))
    result = CliRunner().invoke(app, ["run", str(config), "--target", str(target), "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["stats"]["color_filter"]["models"]
    assert models["target_texts"] == 3
    assert models["target_sha256"] == target_fingerprint(paragraphs)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["stages"]["color_filter"]["target"]["paths"] == [str(target)]
