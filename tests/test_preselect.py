"""PreSelect: predictive strength, labels, the fastText scorer, the character-budget cut, the
stage in a real run and re-selection without re-scoring."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import uniform_model
from typer.testing import CliRunner

import siftline
from siftline.cli import main as cli
from siftline.config import load_config
from siftline.documents import add_local_reasons, make_table
from siftline.errors import ConfigError
from siftline.job.cuts import part_candidates
from siftline.preselect import choose_labels, predictive_strength
from siftline.preselect.classifier import clean_text, load_classifier, positive_probability
from siftline.preselect.config import FastTextConfig
from siftline.preselect.fasttext_train import (
    Example,
    _train_in_subprocess,
    train_fasttext,
    write_training_file,
)
from siftline.preselect.metrics import binary_metrics, roc_auc
from siftline.preselect.strength import agreement_counts
from siftline.selection.cut import CANDIDATE_SCHEMA, Cut, compute_cut
from siftline.selection.cut import selected_mask as cut_mask
from siftline.selection.rules import apply_selection
from siftline.stages import color_filter, preselect_score
from siftline.stages.preselect_score import PreselectScore

GOOD = ["theorem", "proof", "lemma", "integral", "matrix", "vector", "axiom", "field"]
BAD = ["click", "buy", "cheap", "deal", "offer", "free", "shipping", "sale"]
SMALL_FT = {"dim": 10, "bucket": 1000, "epoch": 20, "holdout_fraction": 0.0}


# -- predictive strength ------------------------------------------------------------------------
def test_strength_perfect_agreement_and_disagreement() -> None:
    bench = np.array([0.7, 0.5, 0.3])  # model 0 is best
    bpc = np.array([[1.0, 2.0, 3.0],   # lowest loss for the best model: agrees on every pair
                    [3.0, 2.0, 1.0],   # reversed: disagrees on every pair
                    [1.0, 3.0, 2.0]])  # (0,1) and (0,2) agree, (1,2) disagrees
    assert predictive_strength(bpc, bench).tolist() == pytest.approx([1.0, 0.0, 2 / 3])


def test_loss_ties_count_as_disagreement() -> None:
    bench = np.array([0.9, 0.1])
    assert predictive_strength(np.array([[1.5, 1.5]]), bench).tolist() == [0.0]
    three = predictive_strength(np.array([[1.0, 1.0, 2.0]]), np.array([3.0, 2.0, 1.0]))
    assert three.tolist() == pytest.approx([2 / 3])  # the tied pair agrees on nothing


def test_equal_benchmark_pairs_are_skipped() -> None:
    bench = np.array([0.5, 0.5, 0.2])  # the pair (0, 1) predicts nothing: Z = 2, not 3
    bpc = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [1.0, 1.0, 0.5]])
    agree, counted = agreement_counts(bpc, bench)
    assert counted.tolist() == [2, 2, 2]
    assert predictive_strength(bpc, bench).tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert np.isnan(predictive_strength(bpc, np.array([0.4, 0.4, 0.4]))).all()


def test_missing_losses_leave_their_pairs_out() -> None:
    bench = np.array([3.0, 2.0, 1.0])
    s = predictive_strength(np.array([[np.nan, 1.0, 2.0], [np.nan, np.nan, 1.0]]), bench)
    assert s[0] == 1.0 and np.isnan(s[1])
    with pytest.raises(ValueError, match="n_models"):
        predictive_strength(np.zeros((2, 3)), np.zeros(2))


def test_strength_matches_the_definition_on_random_cases() -> None:
    rng = np.random.default_rng(0)
    bench = rng.integers(0, 4, size=6).astype(float)  # repeated scores on purpose
    bpc = rng.integers(0, 5, size=(200, 6)).astype(float)  # many loss ties
    got = predictive_strength(bpc, bench)
    for row, value in zip(bpc, got, strict=True):
        agree = total = 0
        for i, j in itertools.combinations(range(6), 2):
            if bench[i] == bench[j]:
                continue
            total += 1
            agree += (bench[i] - bench[j]) * (row[j] - row[i]) > 0
        assert (np.isnan(value) and total == 0) or value == pytest.approx(agree / total)
        assert np.isnan(value) or 0.0 <= value <= 1.0


def test_labels_positives_are_s_one_negatives_the_same_number_from_the_bottom() -> None:
    agree = np.array([3, 0, 2, 3, 1, 0, 3, 0, 2])
    counted = np.array([3, 3, 3, 3, 3, 3, 3, 3, 0])  # the last row has no pair: never chosen
    keys = ["i", "h", "g", "f", "e", "d", "c", "b", "a"]
    choice = choose_labels(agree, counted, keys)
    assert sorted(choice.positives.tolist()) == [0, 3, 6]
    # three lowest S (all 0: rows 1, 5, 7) in key order b < d < h
    assert choice.negatives.tolist() == [7, 5, 1]
    capped = choose_labels(agree, counted, keys, max_per_class=2)
    assert capped.positives.tolist() == [6, 3] and capped.negatives.tolist() == [7, 5]
    # more positives than others: the classes stay balanced, positives in key order
    few = choose_labels(np.array([2, 2, 2, 1]), np.array([2, 2, 2, 2]), ["c", "a", "b", "d"])
    assert few.positives.tolist() == [1] and few.negatives.tolist() == [3]


# -- the character-budget cut ---------------------------------------------------------------------
def _cands(scores, chars, ids=None, domains=None, part=0) -> pa.Table:
    n = len(scores)
    return pa.table({"score": scores, "id": ids or [f"d{i}" for i in range(n)],
                     "part": [part] * n, "row": list(range(n)),
                     "domain": domains or ["x"] * n, "tokens": [0] * n, "chars": chars},
                    schema=CANDIDATE_SCHEMA)


def rule_of(**preselect):
    """The cut rule the stage reads off its config section."""
    section = {"model": "unused.bin", **preselect}
    return preselect_score.SPEC.cut.rule(load_config({"stages": {"preselect": section}}))


def selected_mask(table: pa.Table, part: int, cut: Cut):
    return cut_mask(table, part, cut, "preselect_score")


def _part(cands: pa.Table) -> pa.Table:
    return pa.table({"id": cands.column("id"), "domain": cands.column("domain"),
                     "preselect_score": cands.column("score")})


def test_char_budget_threshold_on_a_small_table() -> None:
    cands = _cands([0.9, 0.2, 0.8, 0.5, 0.7], [100, 500, 300, 50, 50])  # 1000 characters
    cut = compute_cut(cands, rule_of(keep=0.45))  # budget 450 characters
    group = cut.groups["*"]
    # best first: 0.9 (100), 0.8 (300) -> 400 <= 450; + 0.7 (50) = 450 <= 450; + 0.5 -> 500 > 450
    assert (group.kept, group.chars_kept, group.budget) == (3, 450, 450.0)
    assert selected_mask(_part(cands), 0, cut).tolist() == [True, False, True, False, True]
    explicit = compute_cut(cands, rule_of(threshold=0.5))
    assert selected_mask(_part(cands), 0, explicit).tolist() == [True, False, True, True, True]


def test_char_budget_ties_by_id_and_per_domain() -> None:
    cands = _cands([0.5, 0.5, 0.5, 0.9], [10, 10, 10, 10], ids=["c", "a", "b", "z"],
                   domains=["x", "x", "x", "y"])
    cut = compute_cut(cands, rule_of(keep=0.5))  # 20 of 40 characters
    assert selected_mask(_part(cands), 0, cut).tolist() == [False, True, False, True]
    per = compute_cut(cands, rule_of(keep=0.5, per_domain=True))
    assert {k: g.kept for k, g in per.groups.items()} == {"x": 1, "y": 0}
    assert selected_mask(_part(cands), 0, per).tolist() == [False, True, False, False]


def test_preselect_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="stages.preselect"):
        load_config({"stages": {"preselect": {"enabled": True}}})
    with pytest.raises(ConfigError, match="stages.preselect.keep"):
        load_config({"stages": {"preselect": {"keep": 1.5}}})
    with pytest.raises(ConfigError, match="all scores are equal"):
        load_config({"stages": {"preselect": {"references": [
            {"path": "a", "score": 1}, {"path": "b", "score": 1}]}}})
    with pytest.raises(ConfigError, match="stages.preselect.fasttext.dimm"):
        load_config({"stages": {"preselect": {"fasttext": {"dimm": 3}}}})
    defaults = FastTextConfig()
    assert (defaults.lr, defaults.dim, defaults.epoch, defaults.word_ngrams, defaults.minn,
            defaults.maxn) == (0.1, 100, 5, 2, 0, 0)


# -- fastText -----------------------------------------------------------------------------------
def _doc(rng: random.Random, words: list[str], n: int = 12) -> str:
    lines = [" ".join(rng.choice(words) for _ in range(n // 3)) for _ in range(3)]
    return "\n".join(lines)  # newlines inside every document, as real text has


def _examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    return [Example(f"e{i}", i % 2, _doc(rng, GOOD if i % 2 else BAD)) for i in range(n)]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ft") / "classifier.bin"
    train_fasttext(_examples(200), FastTextConfig(**SMALL_FT), path)
    return path


def test_newlines_become_spaces_at_training_and_prediction(tmp_path: Path, classifier) -> None:
    assert clean_text("a\nb\n\nc") == "a b  c"
    written = tmp_path / "train.txt"
    examples = _examples(10)
    assert write_training_file(examples, written, seed=0) == 10
    lines = written.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10 and all(line.startswith(("__label__0 ", "__label__1 "))
                                    for line in lines)
    model = load_classifier(classifier)
    text = "theorem proof\nlemma axiom\n"
    with pytest.raises(ValueError):
        model.predict(text)  # fastText itself refuses a newline
    labels, probs = model.predict(clean_text(text), k=-1)
    expected = dict(zip(labels, probs, strict=True))["__label__1"]
    assert positive_probability(model, [text])[0] == pytest.approx(expected, abs=1e-6)


def test_a_drop_in_fasttext_model_scores_as_a_stage(classifier, tmp_path: Path) -> None:
    rng = random.Random(5)
    texts = [_doc(rng, GOOD), _doc(rng, BAD), "   ", _doc(rng, GOOD + BAD)]
    table = add_local_reasons(make_table([f"t{i}" for i in range(4)], texts, ["d"] * 4,
                                         ["s"] * 4), 1_000_000)
    out = PreselectScore(str(classifier), batch_size=2)(table)
    scores = out.column("preselect_score").to_pylist()
    assert scores[2] is None  # dropped while reading: never scored
    assert scores[0] > 0.9 > 0.1 > scores[1]
    assert all(0.0 <= s <= 1.0 for s in (scores[0], scores[1], scores[3]))
    # a model whose labels are not PreSelect's is refused
    other = tmp_path / "other.txt"
    other.write_text("__label__spam buy now\n__label__ham hello there\n" * 20)
    _train_in_subprocess(other, tmp_path / "other.bin", FastTextConfig(dim=5, bucket=100))
    with pytest.raises(ValueError, match="__label__1"):
        PreselectScore(str(tmp_path / "other.bin"))


def test_training_reports_held_out_precision_and_recall(tmp_path: Path) -> None:
    report = train_fasttext(_examples(300, seed=1),
                            FastTextConfig(**{**SMALL_FT, "holdout_fraction": 0.3}),
                            tmp_path / "m.bin")
    held = report["heldout"]
    assert 60 <= held["n"] <= 120 and report["train"]["n"] + held["n"] == 300
    assert held["precision"] > 0.9 and held["recall"] > 0.9 and held["roc_auc"] > 0.95
    with pytest.raises(ValueError, match="both labels"):
        train_fasttext([ex for ex in _examples(20) if ex.label == 1],
                       FastTextConfig(**SMALL_FT), tmp_path / "one.bin")


def test_roc_auc_and_metrics() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    m = binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.6, 0.1]))
    assert (m["precision"], m["recall"], m["accuracy"]) == (0.5, 0.5, 0.5)


# -- the stage in a run, and re-selection --------------------------------------------------------
def _corpus(folder: Path, n: int = 120, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        good = i % 3 == 0
        rows.append({"id": f"r{i:04d}", "domain": "good" if good else "bad",
                     "text": _doc(rng, GOOD if good else BAD, rng.randint(6, 30))})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_stage_in_a_local_run_and_reselection(classifier, tmp_path: Path, monkeypatch) -> None:
    corpus = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    config = {"input": {"paths": [str(corpus)]}, "output": {"path": str(out)},
              "executor": {"kind": "local"},
              "stages": {"preselect": {"enabled": True, "model": str(classifier),
                                       "keep": 0.2}}}
    stats = siftline.run(config).stats
    group = stats["preselect"]["cut"]["groups"]["*"]
    assert group["chars_kept"] <= 0.2 * group["chars"]
    by = stats["by_domain"]
    kept_chars = sum(d["chars_kept"] for d in by.values())
    assert kept_chars == group["chars_kept"] and stats["kept"] == group["kept"]
    assert by["bad"]["kept"] == 0 and by["good"]["kept"] > 0
    assert stats["dropped"] == {"preselect": 120 - stats["kept"]}
    scored = pa.concat_tables(
        [pa.parquet.read_table(p) for p in sorted((out / "scored").glob("*.parquet"))])
    assert scored.column("preselect_score").null_count == 0

    def no_model(*args, **kwargs):
        raise AssertionError("re-selection must not load the classifier")

    monkeypatch.setattr("siftline.stages.preselect_score.load_classifier", no_model)
    result = CliRunner().invoke(cli.app, ["select", str(out), "--preselect-keep", "0.5",
                                          "--executor", "local", "--json"])
    assert result.exit_code == 0, result.output
    new = json.loads(result.stdout)
    new_group = new["preselect"]["cut"]["groups"]["*"]
    assert new["preselect"]["cut"]["amount"] == 0.5
    assert group["kept"] < new_group["kept"] and new_group["chars_kept"] <= 0.5 * group["chars"]
    assert new["kept"] == new_group["kept"]
    assert sum(1 for _ in (out / "data").glob("*.parquet")) >= 1


# -- labelling with given reference models, eval-lm ---------------------------------------------
@pytest.fixture(scope="module")
def uniform_models(tmp_path_factory) -> dict[int, str]:
    from siftline.lm.tokenizer import train_tokenizer

    tokenizer = train_tokenizer([" ".join(GOOD + BAD)] * 20, vocab_size=280)
    root = tmp_path_factory.mktemp("lms")
    return {v: uniform_model(root / f"v{v}", v, tokenizer) for v in (300, 400, 512)}


def test_write_labels_records_strength_and_every_bpc(tmp_path: Path) -> None:
    from siftline.preselect.labels import Reference, write_labels

    refs = [Reference("big", "p/big", 0.7), Reference("mid", "p/mid", 0.5),
            Reference("small", "p/small", 0.3)]
    bpc = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [2.0, 1.0, 3.0],
                    [1.0, 1.5, 2.0], [np.nan, np.nan, 1.0]])
    ids = [f"x{i}" for i in range(6)]
    summary = write_labels(ids, ["t"] * 6, bpc, refs, tmp_path / "labels.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    # rows 2 and 3 both have S = 2/3: one of them (by a hash of the id) is the second negative
    labels = [r["label"] for r in rows]
    assert labels[:2] == [1, 0] and labels[4:] == [1, None] and sorted(labels[2:4], key=str) == [
        0, None]
    assert rows[2]["strength"] == pytest.approx(2 / 3) and rows[5]["strength"] is None
    assert rows[0]["bpc"] == {"big": 1.0, "mid": 2.0, "small": 3.0}
    assert rows[5]["bpc"]["big"] is None
    assert (summary["positives"], summary["negatives"], summary["no_pairs"]) == (2, 2, 1)


def test_preselect_label_cli_with_given_models(uniform_models, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "in", n=30)
    refs = [{"path": uniform_models[512], "score": 0.2, "name": "v512"},
            {"path": uniform_models[300], "score": 0.9, "name": "v300"},
            {"path": uniform_models[400], "score": 0.5, "name": "v400"}]
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({
        "input": {"paths": [str(corpus)]}, "output": {"path": str(tmp_path / "out")},
        "stages": {"preselect": {"references": refs,
                                 "label": {"score": {"device": "cpu"}}}}}))
    result = CliRunner().invoke(cli.app, ["preselect", "label", str(config), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # lower vocabulary = lower loss on every document, and the order matches the scores: S = 1
    # everywhere, so no document can be a negative and, classes balanced, none is labelled
    assert summary["documents"] == 30 and summary["mean_strength"] == 1.0
    assert summary["positives"] == summary["negatives"] == 0
    rows = [json.loads(x) for x in Path(summary["labels"]).read_text().splitlines()]
    from siftline.lm.scorer import DocumentScorer

    scorer = DocumentScorer.from_folder(uniform_models[512])
    n_tokens = scorer.score([rows[0]["text"]]).n_tokens[0]
    expected = n_tokens * math.log(512) / (len(rows[0]["text"]) * math.log(2))
    assert rows[0]["bpc"]["v512"] == pytest.approx(expected, rel=1e-5)
    assert all(r["strength"] == 1.0 and r["label"] is None for r in rows)
    # scores in the reverse order: S = 0 everywhere
    for ref, score in zip(refs, (0.9, 0.2, 0.5), strict=True):
        ref["score"] = score
    config.write_text(json.dumps({
        "input": {"paths": [str(corpus)]}, "output": {"path": str(tmp_path / "out")},
        "stages": {"preselect": {"references": refs, "label": {"score": {"device": "cpu"}}}}}))
    result = CliRunner().invoke(cli.app, ["preselect", "label", str(config), "--json",
                                          "--labels", str(tmp_path / "l2.jsonl")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mean_strength"] == 0.0


def test_eval_lm_encodes_each_choice_apart_from_its_query(uniform_models) -> None:
    """As lm-eval does: the choice's tokens are " choice" encoded on its own, after the query's
    own tokens, so the query's NLL inside query + choice is the query's NLL alone."""
    from siftline.lm.scorer import DocumentScorer
    from siftline.preselect.evaluate import EvalSet, Question, continuation_sequences

    scorer = DocumentScorer.from_folder(uniform_models[300])
    data = EvalSet("choice", [Question("pick one of", ["theorem", "proof lemma"], 0),
                              Question("again", ["x"], 0)])
    texts, seqs = continuation_sequences(scorer, data)
    tokenizer = scorer.model.tokenizer
    assert texts == ["pick one of theorem", "pick one of proof lemma", "again x"]
    (query1, query2) = scorer.sequences(["pick one of", "again"])
    assert seqs == [query1 + tokenizer.encode_batch([" theorem"])[0],
                    query1 + tokenizer.encode_batch([" proof lemma"])[0],
                    query2 + tokenizer.encode_batch([" x"])[0]]
    full = scorer.score(texts, seqs=seqs).nll_sum
    alone = scorer.score(["pick one of", "again"]).nll_sum
    cont_tokens = [len(s) - len(q) for s, q in zip(seqs, [query1, query1, query2], strict=True)]
    uniform = np.log(scorer.model.head().weight.shape[0])  # every logit equal
    assert full - alone[[0, 0, 1]] == pytest.approx(np.array(cont_tokens) * uniform, rel=1e-4)


def test_eval_lm_multiple_choice_and_loss(uniform_models, tmp_path: Path) -> None:
    questions = [  # a uniform model prefers the choice with the fewest tokens
        {"query": "pick one", "choices": ["theorem", "theorem proof lemma axiom"], "gold": 0},
        {"query": "pick one", "choices": ["buy cheap deal offer free", "sale"], "gold": 0},
        {"query": "again", "choices": ["matrix vector", "field", "axiom proof lemma"],
         "gold": 1},
        {"query": "last", "choices": ["click", "buy click deal offer"], "gold": 1},
    ]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions))
    result = CliRunner().invoke(cli.app, ["eval-lm", uniform_models[300], "--eval", str(path),
                                          "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    (got,) = json.loads(result.stdout)
    assert got["kind"] == "choice" and got["n"] == 4 and got["accuracy"] == 0.5
    text = tmp_path / "target.txt"
    text.write_text("theorem proof lemma\n\nbuy cheap deal\n")
    result = CliRunner().invoke(cli.app, ["eval-lm", uniform_models[300], uniform_models[512],
                                          "--eval", str(text), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    small, big = json.loads(result.stdout)
    assert small["kind"] == "loss" and small["score"] == -small["bpc"]
    assert big["bpc"] / small["bpc"] == pytest.approx(math.log(512) / math.log(300))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q", "choices": ["a"], "gold": 3}) + "\n")
    result = CliRunner().invoke(cli.app, ["eval-lm", uniform_models[300], "--eval", str(bad),
                                          "--kind", "choice"])
    assert result.exit_code == 2 and "gold" in result.output


# -- the offline path in a run -------------------------------------------------------------------
def _varied_corpus(folder: Path, n: int = 150, seed: int = 3) -> Path:
    """Three domains with their own Zipf-like vocabularies and short, noisy documents, so small
    LMs at different budgets do not rank every document the same way."""
    rng = random.Random(seed)
    vocab = {d: [f"{d[:2]}{rng.randrange(10**6):x}" for _ in range(80)]
             for d in ("good", "prose", "code")}
    shared = [f"w{k}" for k in range(40)]
    rows = []
    for i in range(n):
        domain = ("good", "prose", "code")[i % 3]
        words = vocab[domain] + shared
        weights = [1 / (k + 1) for k in range(len(words))]
        text = " ".join(rng.choices(words, weights, k=rng.randint(4, 40)))
        rows.append({"id": f"v{i:04d}", "domain": domain, "text": text})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_offline_path_builds_the_classifier_in_a_run(tmp_path: Path) -> None:
    corpus = _varied_corpus(tmp_path / "in")
    tiny = {"vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 64}
    train = {"batch_size": 8, "threads": 1, "eval_every": 1000, "device": "cpu", "lr": 0.01}
    config = {
        "input": {"paths": [str(corpus)]}, "output": {"path": str(tmp_path / "out")},
        "executor": {"kind": "local"},
        "stages": {"exact_dedupe": {"enabled": False}, "preselect": {
            "enabled": True, "keep": 0.3,
            "train_references": {
                "models": [{"name": "short", "model": tiny, "train": {**train, "tokens": 10000}},
                           {"name": "mid", "model": tiny, "train": {**train, "tokens": 25000}},
                           {"name": "long", "model": tiny,
                            "train": {**train, "tokens": 50000}}],
                "eval": {"domain": "good", "holdout_fraction": 0.3},
                "score": {"device": "cpu", "threads": 1}},
            "label": {"score": {"device": "cpu", "threads": 1}},
            "fasttext": {"dim": 10, "bucket": 5000, "epoch": 10}}}}
    stats = siftline.run(config).stats
    info = stats["preselect"]["classifier"]
    assert info["built"] and Path(info["model"]).is_file()
    evaluated = {r["name"]: r for r in info["references"]["evaluated"]}
    assert evaluated["long"]["score"] > evaluated["short"]["score"]  # more tokens, lower bpc
    labels = info["labels"]
    assert labels["documents"] == 150 and labels["positives"] == labels["negatives"] > 0
    rows = [json.loads(x) for x in Path(labels["labels"]).read_text().splitlines()]
    assert all(set(r["bpc"]) == {"short", "mid", "long"} for r in rows)
    group = stats["preselect"]["cut"]["groups"]["*"]
    assert 0 < group["chars_kept"] <= 0.3 * group["chars"]
    assert stats["kept"] == group["kept"]
    # a second run reuses everything it built
    stamp = Path(info["model"]).stat().st_mtime_ns
    again = siftline.run(config, overwrite=True).stats
    assert Path(info["model"]).stat().st_mtime_ns == stamp
    assert again["kept"] == stats["kept"]


# -- real data: the training path on human labels -------------------------------------------------
DCLM = Path(__file__).resolve().parents[2] / "shared" / "data" / "web" / "dclm_labeled.jsonl"


@pytest.mark.skipif(not DCLM.is_file(), reason="../shared/data is not on this machine")
def test_dclm_human_labels_train_a_classifier_that_ranks_the_other_half(tmp_path) -> None:
    rows = [json.loads(line) for line in DCLM.read_text(encoding="utf-8").splitlines()]
    examples = [Example(f"dclm{i}", int(r["label"]), r["text"]) for i, r in enumerate(rows)]
    train, test = examples[0::2], examples[1::2]
    cfg = FastTextConfig(holdout_fraction=0.0, bucket=200_000)  # the paper's other settings
    train_fasttext(train, cfg, tmp_path / "dclm.bin")
    scores = positive_probability(load_classifier(tmp_path / "dclm.bin"),
                                  [ex.text for ex in test])
    auc = roc_auc(np.array([ex.label for ex in test]), scores)
    print(f"dclm_labeled: train {len(train)}, test {len(test)}, ROC AUC {auc:.4f}")
    assert auc > 0.6


def test_color_filter_chooses_among_what_preselect_keeps() -> None:
    table = pa.table({
        "id": [f"d{i}" for i in range(6)], "domain": ["x"] * 6, "n_chars": [10] * 6,
        "drop_reason": pa.array([None, None, None, None, None, "empty"], pa.string()),
        "preselect_score": [0.9, 0.8, 0.7, 0.2, 0.1, None],
        "color_score": [0.1, 0.5, 0.9, 0.95, 0.99, None], "color_n_tokens": [5] * 6})
    config = load_config({"stages": {
        "exact_dedupe": {"enabled": False},
        "preselect": {"enabled": True, "model": "unused.bin", "keep": 0.6},
        "color_filter": {"enabled": True, "prior": "p", "conditional": "c", "tau": 3}}})
    pre, color = preselect_score.SPEC, color_filter.SPEC
    pcut = compute_cut(part_candidates(pre, [], {}, config, lambda part: table, 0),
                       pre.cut.rule(config))
    assert pcut.groups["*"].kept == 3  # 30 of 50 characters: d0, d1, d2
    cands = part_candidates(color, [pre], {"preselect": pcut}, config,
                            lambda part: table, 0)
    assert cands.column("id").to_pylist() == ["d0", "d1", "d2"]
    ccut = compute_cut(cands, color.cut.rule(config))  # the top 1/3 of 3: d2
    out = apply_selection(table, [color, pre], part=0,
                          cuts={"color_filter": ccut, "preselect": pcut})
    assert out.column("drop_reason").to_pylist() == [
        "color_filter", "color_filter", None, "preselect", "preselect", "empty"]


def test_preselect_train_cli_reports_held_out_metrics(tmp_path: Path) -> None:
    from siftline.preselect.labels import Reference, write_labels

    examples = _examples(200, seed=4)
    bpc = np.array([[1.0, 2.0] if ex.label else [2.0, 1.0] for ex in examples])
    write_labels([ex.id for ex in examples], [ex.text for ex in examples], bpc,
                 [Reference("a", "a", 2.0), Reference("b", "b", 1.0)], tmp_path / "l.jsonl")
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"output": {"path": str(tmp_path / "out")}, "stages": {
        "preselect": {"fasttext": {**SMALL_FT, "holdout_fraction": 0.25}}}}))
    result = CliRunner().invoke(cli.app, ["preselect", "train", str(config), "--labels",
                                          str(tmp_path / "l.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == str(tmp_path / "out" / "models" / "preselect" / "classifier.bin")
    assert report["train"]["n"] + report["heldout"]["n"] == 200
    assert report["heldout"]["precision"] > 0.9 and report["heldout"]["recall"] > 0.9
    load_classifier(report["model"])
    missing = CliRunner().invoke(cli.app, ["preselect", "train", str(config), "--labels",
                                           str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "preselect label" in missing.output
