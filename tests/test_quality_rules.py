"""The rule stages at their boundaries: each rule alone (the others off), its limit kept and one
step past it dropped, the first failing rule named, null limits off, and re-judging a run's
measurements with new limits through `siftline select`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import read_scored, write_jsonl
from typer.testing import CliRunner

import siftline
from siftline.cli.main import app
from siftline.config import load_config
from siftline.documents import active_mask, make_table
from siftline.errors import ConfigError
from siftline.quality.gopher import repeated_ngram_chars, top_ngram_chars
from siftline.stages.chain import BuiltStage, apply_stages
from siftline.stages.registry import REGISTRY
from siftline.stages.spec import StageSpec

GOPHER_OFF = {k: None for k in (
    "min_doc_words", "max_doc_words", "min_avg_word_length", "max_avg_word_length",
    "max_hash_ratio", "max_ellipsis_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
    "min_alpha_words_ratio", "min_stop_words")}
REPETITION_OFF = {"dup_para_frac": None, "dup_para_char_frac": None, "dup_line_frac": None,
                  "dup_line_char_frac": None, "top_n_grams": {}, "dup_n_grams": {}}
FINEWEB_OFF = {"line_punct_thr": None, "short_line_thr": None, "char_duplicates_ratio": None,
               "new_line_ratio": None}
C4_OFF = {"filter_lorem_ipsum": False, "filter_curly_bracket": False,
          "min_num_sentences": None}


def judge(name: str, texts: list[str], **section: object) -> list[str | None]:
    """The failing rule per text (None: kept), as a run's selection decides it."""
    config = load_config({"stages": {name: {"enabled": True, **section}}})
    spec = REGISTRY[name]
    table = pa.table({"text": texts, "drop_reason": pa.nulls(len(texts), pa.string())})
    return spec.rules(spec.build(config)(table), config).to_pylist()


def words(n: int, word: str = "words") -> str:
    return " ".join([word] * n)


@pytest.mark.parametrize(("key", "limit", "kept", "dropped"), [
    ("min_doc_words", 50, words(50), words(49)),
    ("max_doc_words", 10, words(10), words(11)),
    ("min_avg_word_length", 3, words(5, "abc"), words(5, "ab")),
    ("max_avg_word_length", 10, words(5, "a" * 10), words(5, "a" * 11)),
    ("max_hash_ratio", 0.1, words(54) + " #" * 6, words(54) + " #" * 7),
    ("max_ellipsis_ratio", 0.1, words(9) + " …", words(8) + " … …"),
    ("max_bullet_lines_ratio", 0.5, "- a\n- b\nc\nd", "- a\n- b\n- c\nd"),
    ("max_ellipsis_lines_ratio", 0.5, "a...\nb…\nc\nd", "a...\nb…\nc...\nd"),
    ("min_alpha_words_ratio", 0.8, "a b c d 5", "a b c 4 5"),
    ("min_stop_words", 2, "the cat and dog", "the cat the dog"),
])
def test_gopher_quality_rule_at_its_limit(key: str, limit: float, kept: str,
                                          dropped: str) -> None:
    assert judge("gopher_quality", [kept, dropped], **{**GOPHER_OFF, key: limit}) == [None, key]


def test_gopher_quality_names_the_first_failing_rule_in_datatrove_order() -> None:
    # Too short AND without stop words: the word count is checked first.
    assert judge("gopher_quality", [words(10)]) == ["min_doc_words"]
    assert judge("gopher_quality", [words(10)], min_doc_words=None) == ["min_stop_words"]
    assert judge("gopher_quality", [words(60) + " the and"]) == [None]


def test_stop_words_are_matched_case_sensitively() -> None:
    assert judge("gopher_quality", ["The cat And dog"], **{**GOPHER_OFF, "min_stop_words": 2}) \
        == ["min_stop_words"]


def test_top_ngram_counts_the_first_seen_of_equally_frequent_ngrams() -> None:
    # "a b" and "bb cc" occur twice each; the first seen ("a b", 3 characters) counts.
    assert top_ngram_chars(["a", "b", "a", "b", "bb", "cc", "bb", "cc"], 2) == 3 * 2
    assert top_ngram_chars(["one"], 2) == 0


def test_repeated_ngrams_skip_past_each_repeat() -> None:
    # "a b" repeats at 2 and 4: each repeat counts its 2 characters once.
    assert repeated_ngram_chars(["a", "b", "a", "b", "a", "b"], 2) == 4
    assert repeated_ngram_chars(["x", "y", "z"], 5) == 0


@pytest.mark.parametrize(("key", "limit", "kept", "dropped"), [
    ("dup_para_frac", 0.25, "p1\n\np2\n\np3\n\np1", "p1\n\np2\n\np1\n\np1"),
    # 10 of 50 characters in a repeated paragraph: 0.2 kept; 11 of 51 dropped
    ("dup_para_char_frac", 0.2, "abcdefghij\n\n" + "x" * 26 + "\n\nabcdefghij",
     "abcdefghijk\n\n" + "x" * 25 + "\n\nabcdefghijk"),
    ("dup_line_frac", 0.25, "l1\nl2\nl3\nl1", "l1\nl2\nl1\nl1"),
    # 10 of 50 characters repeated: 0.2 kept; 11 of 51 dropped
    ("dup_line_char_frac", 0.2, "abcdefghij\n" + "x" * 28 + "\nabcdefghij",
     "abcdefghijk\n" + "x" * 27 + "\nabcdefghijk"),
])
def test_gopher_repetition_rule_at_its_limit(key: str, limit: float, kept: str,
                                             dropped: str) -> None:
    rules = judge("gopher_repetition", [kept, dropped], **{**REPETITION_OFF, key: limit})
    assert rules == [None, key]


def test_gopher_repetition_ngram_rules_name_their_n() -> None:
    text = words(30, "spam ham")
    assert judge("gopher_repetition", [text], **{**REPETITION_OFF, "top_n_grams": {2: 0.2}}) \
        == ["top_2_gram"]
    assert judge("gopher_repetition", [text], **{**REPETITION_OFF, "dup_n_grams": {7: 0.1}}) \
        == ["dup_7_gram"]
    assert judge("gopher_repetition", [text], **REPETITION_OFF) == [None]


def test_gopher_repetition_measures_only_the_published_ngram_sizes() -> None:
    with pytest.raises(ConfigError, match="top_n_grams.*not measured"):
        load_config({"stages": {"gopher_repetition": {"top_n_grams": {11: 0.1}}}})


@pytest.mark.parametrize(("key", "limit", "kept", "dropped"), [
    ("line_punct_thr", 0.5, "One.\nTwo\nThree!\nfour", "One.\nTwo\nThree\nfour"),
    ("short_line_thr", 0.5, "short\n" + "x" * 31 + "\nshort2\n" + "y" * 31,
     "short\n" + "x" * 31 + "\nshort2\nshort3"),
    ("new_line_ratio", 0.5, "a b\nc d\n", "a b\nc\nd\n"),
    # 10 of 100 non-newline characters in a repeated line: 0.1 kept; 11 of 101 dropped
    ("char_duplicates_ratio", 0.1, "abcdefghij\n" + "x" * 80 + "\nabcdefghij",
     "abcdefghijk\n" + "x" * 79 + "\nabcdefghijk"),
])
def test_fineweb_rule_at_its_limit(key: str, limit: float, kept: str, dropped: str) -> None:
    assert judge("fineweb_quality", [kept, dropped], **{**FINEWEB_OFF, key: limit}) \
        == [None, key]


def test_fineweb_line_punct_exclude_zero_spares_documents_without_punctuation() -> None:
    text = "no punctuation here\nnor here"
    only = {**FINEWEB_OFF, "line_punct_thr": 0.12}
    assert judge("fineweb_quality", [text], **only) == ["line_punct_thr"]
    assert judge("fineweb_quality", [text], **only, line_punct_exclude_zero=True) == [None]


SENTENCE_LINE = "This line has one sentence in it."


@pytest.mark.parametrize(("lines", "rule"), [
    ([SENTENCE_LINE] * 5, None),
    ([SENTENCE_LINE] * 4, "min_num_sentences"),
    ([SENTENCE_LINE] * 4 + ["Only two", "The end of it is here..."], "min_num_sentences"),
    ([SENTENCE_LINE] * 5 + ["Lorem ipsum dolor sit amet."], "filter_lorem_ipsum"),
    ([SENTENCE_LINE] * 5 + ["lorem ipsum"], None),  # a line C4 removes anyway
    ([SENTENCE_LINE] * 5 + ["Set x to {1, 2} now."], "filter_curly_bracket"),
    ([SENTENCE_LINE] * 5 + ["Enable javascript to see {this}."], None),
    ([SENTENCE_LINE] * 4 + ["See our privacy policy for it."], "min_num_sentences"),
])
def test_c4_judges_what_its_line_removal_leaves(lines: list[str], rule: str | None) -> None:
    assert judge("c4_quality", ["\n".join(lines)]) == [rule]


def test_c4_kept_share_is_an_optional_rule() -> None:
    text = "\n".join([SENTENCE_LINE] * 5 + ["a long line without an end " * 6])
    assert judge("c4_quality", [text]) == [None]
    assert judge("c4_quality", [text], min_kept_share=0.6) == ["min_kept_share"]


def test_rows_dropped_while_reading_are_not_measured() -> None:
    config = load_config({"stages": {"gopher_quality": {"enabled": True}}})
    spec = REGISTRY["gopher_quality"]
    table = pa.table({"text": ["", words(60) + " the and"],
                      "drop_reason": pa.array(["empty", None], pa.string())})
    out = spec.build(config)(table)
    assert out.column("gopher_quality_words").to_pylist() == [None, 62]
    assert spec.rules(out, config).to_pylist() == [None, None]


def test_run_counts_rules_and_select_rejudges_with_new_limits(tmp_path: Path) -> None:
    """A run names each row's failing rule in scored/, stats.json counts rows per rule (they
    add up to the stage's drops), inspect shows them with an example, and `select` re-judges
    the persisted measurements with a new limit."""
    good = " ".join(["the brown fox jumps over the lazy dog and runs with others"] * 6)
    docs = [good + f" {i}" for i in range(6)] + [words(20, "short"), words(10) + " the and"]
    source = write_jsonl(tmp_path / "in.jsonl",
                         [{"id": f"d{i}", "text": t} for i, t in enumerate(docs)])
    out = tmp_path / "out"
    stats = siftline.run(load_config({
        "input": {"paths": [str(source)]}, "output": {"path": str(out)},
        "executor": {"kind": "local"}, "mixture": {"enabled": False},
        "stages": {"exact_dedupe": {"enabled": False}, "gopher_quality": {"enabled": True}},
    })).stats
    assert stats["dropped"] == {"gopher_quality": 2}
    assert stats["dropped_by_rule"] == {"gopher_quality": {"min_doc_words": 2}}
    rules = read_scored(out).column("gopher_quality_rule").to_pylist()
    assert sorted(filter(None, rules)) == ["min_doc_words", "min_doc_words"]
    shown = CliRunner().invoke(app, ["inspect", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "min_doc_words" in shown.output and "short short" in shown.output
    result = CliRunner().invoke(app, ["select", str(out), "--executor", "local", "--json",
                                      "--set", "stages.gopher_quality.min_doc_words=15"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    # The 20-word page now passes the word count and fails the next rule, the 12-word one not.
    assert stats["dropped_by_rule"] == {"gopher_quality": {"min_doc_words": 1,
                                                           "min_stop_words": 1}}
    assert stats["kept"] == 6


def test_costly_stages_skip_what_the_rules_before_them_drop() -> None:
    """A model stage leaves unscored the rows the rule stages drop; the batch keeps its own
    reasons (selection decides them from the persisted columns)."""
    config = load_config({"stages": {"gopher_quality": {"enabled": True}}})
    scored: list[bool] = []

    def model(table: pa.Table) -> pa.Table:
        scored.extend(active_mask(table).to_pylist())
        return table.append_column("m", pa.array([1.0] * table.num_rows))

    costly = StageSpec(name="m", reason="m", priority=90, build=lambda c: model,
                       columns=("m",), costly=True)
    quality = REGISTRY["gopher_quality"]
    stages = [BuiltStage(quality, quality.build(config)), BuiltStage(costly, model)]
    good = " ".join(["the brown fox jumps over the lazy dog and runs with others"] * 6)
    table = make_table(["a", "b", "c"], [good, "too short", " "], ["d"] * 3, ["s"] * 3)
    out = apply_stages(table, stages, 1_000_000, config)
    assert scored == [True, False, False]
    assert out.column("drop_reason").to_pylist() == [None, None, "empty"]
    assert apply_stages(table, stages, 1_000_000).column("m").to_pylist() == [1.0] * 3
    assert scored[3:] == [True, True, False]  # without the config, nothing is skipped
