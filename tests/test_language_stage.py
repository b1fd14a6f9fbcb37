"""Stage `language`: fastText's lid.176 (bundled), decided as datatrove's LanguageFilter does.

The definition the stage is held to: the top label of `model.predict(text.replace("\\n", " "),
k=1)` is `language`, its probability `language_score`, and a row is kept when any wanted
language's probability from the full prediction (k=-1) is above the threshold (`>`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from helpers import read_data, read_scored, write_jsonl
from typer.testing import CliRunner

import siftline
from siftline.cli.main import app
from siftline.config import load_config
from siftline.documents import add_local_reasons, make_table
from siftline.errors import ConfigError
from siftline.langid import BUNDLED_MODEL, BUNDLED_SHA256, load_lid, predict_language_scores
from siftline.stages.language import COLUMNS, LanguageID, _rules, floor_of
from siftline.stages.registry import REGISTRY

LANGUAGES = {
    "en": "The committee will publish its final report next week.\nIt covers the budget.",
    "fr": "Le comité publiera son rapport définitif la semaine prochaine.",
    "de": "Der Ausschuss wird seinen Abschlussbericht nächste Woche veröffentlichen.",
    "zh": "委员会将于下周发表最终报告。",
    "ru": "Комитет опубликует свой окончательный доклад на следующей неделе.",
    "ar": "ستنشر اللجنة تقريرها النهائي الأسبوع المقبل.",
}
# Two languages in one text: the second label's probability is well above 0.1 here.
MIXED = [
    "I like to read books. J'aime lire des livres. Ich lese gern Bücher.",
    "Paris London Berlin Madrid",
    "Good morning everyone. Buenos días a todos.",
    "Welcome to our website. Bienvenue sur notre site.",
    "Thank you very much, merci beaucoup, danke schön",
    "ok ok ok",
]


@pytest.fixture(scope="module")
def model() -> Any:
    return load_lid()


def table_of(texts: list[str], max_doc_bytes: int = 1_000_000) -> pa.Table:
    n = len(texts)
    return add_local_reasons(make_table([f"d{i}" for i in range(n)], texts, ["x"] * n,
                                        ["s"] * n), max_doc_bytes)


def section(**language: Any) -> Any:
    return load_config({"stages": {"language": {"enabled": True, **language}}})


def scored(texts: list[str], max_doc_bytes: int = 1_000_000, **language: Any) -> pa.Table:
    return LanguageID.build(section(**language))(table_of(texts, max_doc_bytes))


def full_prediction(model: Any, text: str) -> dict[str, float]:
    """What datatrove's FT176LID gives LanguageFilter: every label's probability (k=-1)."""
    labels, probs = model.predict(text.replace("\n", " "), k=-1)
    return {label.removeprefix("__label__"): float(p) for label, p in zip(labels, probs,
                                                                           strict=True)}


def datatrove_keeps(model: Any, text: str, languages: list[str], threshold: float) -> bool:
    scores = full_prediction(model, text)
    return any(scores.get(lang, 0.0) > threshold for lang in languages)


def decided(table: pa.Table, **language: Any) -> list[str | None]:
    return _rules(table, section(**language)).to_pylist()


def test_the_bundled_model_is_the_released_file_and_loads() -> None:
    assert hashlib.sha256(BUNDLED_MODEL.read_bytes()).hexdigest() == BUNDLED_SHA256
    notice = (BUNDLED_MODEL.parent / "NOTICE").read_text(encoding="utf-8")
    assert BUNDLED_SHA256 in notice and "CC BY-SA 3.0" in notice
    assert len(load_lid().get_labels()) == 176
    assert tuple(REGISTRY)[0] == "language"


def test_language_and_score_are_the_top_label_of_a_plain_predict(model: Any) -> None:
    texts = [*LANGUAGES.values(), *MIXED]
    table = scored(texts)
    for row, text in zip(table.select(["language", "language_score"]).to_pylist(), texts,
                         strict=True):
        labels, probs = model.predict(text.replace("\n", " "), k=1)
        assert row["language"] == labels[0].removeprefix("__label__"), text
        assert abs(row["language_score"] - float(probs[0])) < 1e-4, text
    assert table.column("language").to_pylist()[:6] == list(LANGUAGES)


def test_texts_with_no_label_at_the_floor_still_get_their_top_label(model: Any) -> None:
    texts = [*LANGUAGES.values(), *MIXED]
    found = predict_language_scores(model, texts, batch_size=4, floor=0.99)
    for text, language, score in zip(texts, found.languages, found.scores, strict=True):
        labels, probs = model.predict(text.replace("\n", " "), k=1)
        assert (language, float(score)) == (labels[0][9:], float(probs[0]))
    assert all(s >= 0.99 for s in found.others_scores)


def test_a_score_exactly_at_the_threshold_is_dropped() -> None:
    table = scored([LANGUAGES["en"]])
    score = table.column("language_score")[0].as_py()
    assert 0.5 < score < 1
    assert decided(table, threshold=score) == ["language"]  # datatrove keeps score > threshold
    assert decided(table, threshold=float(np.nextafter(score, 0))) == [None]


def test_several_wanted_languages() -> None:
    table = scored(list(LANGUAGES.values()))
    assert decided(table, languages=["fr", "de"]) == [
        None if lang in ("fr", "de") else "language" for lang in LANGUAGES]
    assert decided(table, languages=list(LANGUAGES)) == [None] * 6
    assert decided(table) == [None, *["language"] * 5]  # default: en


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.3, 0.45, 0.5, 0.65, 0.9])
@pytest.mark.parametrize("languages", [["en"], ["de"], ["fr", "es"], ["en", "de", "nl"]])
def test_keep_rule_matches_datatrove_below_and_above_one_half(
    model: Any, threshold: float, languages: list[str]
) -> None:
    """Below 0.5 a language other than the top one can pass: `language_others` carries it."""
    texts = [*MIXED, *LANGUAGES.values()]
    table = scored(texts, threshold=threshold)
    expected = [None if datatrove_keeps(model, t, languages, threshold) else "language"
                for t in texts]
    assert decided(table, languages=languages, threshold=threshold) == expected


def test_a_non_top_wanted_language_is_kept_below_one_half(model: Any) -> None:
    text = MIXED[0]  # fr ~0.6, de ~0.33
    table = scored([text], threshold=0.3)
    assert table.column("language").to_pylist() == ["fr"]
    assert decided(table, languages=["de"], threshold=0.3) == [None]
    assert decided(table, languages=["de"], threshold=0.5) == ["language"]
    assert full_prediction(model, text)["de"] > 0.3


def test_keep_rule_matches_datatrove_language_filter(model: Any) -> None:
    """datatrove's own filter, its model swapped for the bundled one (nothing downloads)."""
    pytest.importorskip("fasteners")
    lf_module = pytest.importorskip("datatrove.pipeline.filters.language_filter")
    from datatrove.data import Document

    texts = [*MIXED, *LANGUAGES.values()]
    for languages, threshold in ((["en"], 0.65), (["de", "es"], 0.2), (["en"], 0.3)):
        lf = lf_module.LanguageFilter(languages=languages, language_threshold=threshold)
        lf.model._model = model
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        keeps = [bool(lf.filter(doc)) for doc in docs]
        table = scored(texts, threshold=threshold)
        got = decided(table, languages=languages, threshold=threshold)
        assert [reason is None for reason in got] == keeps
        for doc, row in zip(docs, table.to_pylist(), strict=True):
            assert doc.metadata["language"] == row["language"]
            assert abs(doc.metadata["language_score"] - row["language_score"]) < 1e-6


def test_rows_dropped_while_reading_get_nulls() -> None:
    texts = [LANGUAGES["fr"], "   ", "x" * 200, LANGUAGES["en"]]
    table = scored(texts, max_doc_bytes=100)
    assert table.column("drop_reason").to_pylist() == [None, "empty", "too_long", None]
    for column in COLUMNS:
        assert table.column(column).null_count == 2
        assert table.column(column)[1].as_py() is None
    assert table.column("language_others").type == pa.list_(
        pa.struct([("language", pa.string()), ("score", pa.float64())]))
    assert decided(table) == ["language", None, None, None]
    assert _rules(table.drop_columns(["language_others"]), section()) is None


def test_a_null_language_on_a_row_in_play_is_dropped() -> None:
    table = scored([LANGUAGES["en"], LANGUAGES["en"]])
    index = table.column_names.index("language")
    table = table.set_column(index, "language", pa.array(["en", None], pa.string()))
    assert decided(table) == [None, "language"]


def test_the_floor_follows_the_threshold_and_bounds_reselection() -> None:
    assert floor_of(0.65) == 0.1 and floor_of(0.05) == 0.05
    table = scored([LANGUAGES["en"]], threshold=0.65)
    assert table.column("language_floor").to_pylist() == [0.1]
    with pytest.raises(ConfigError, match="stages.language.threshold: 0.05 is below 0.1"):
        _rules(table, section(threshold=0.05))


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stages.language.languages"):
        load_config({"stages": {"language": {"languages": []}}})
    with pytest.raises(ConfigError, match="stages.language.threshold"):
        load_config({"stages": {"language": {"threshold": 1.0}}})
    with pytest.raises(ConfigError, match="stages.language.threshold"):
        load_config({"stages": {"language": {"threshold": -0.1}}})
    assert load_config({"stages": {"language": {"languages": ["__label__fr"]}}}
                       ).stages.language.languages == ["fr"]
    corpus = write_jsonl(tmp_path / "in.jsonl", [{"text": LANGUAGES["en"]}])
    not_a_model = tmp_path / "model.bin"
    not_a_model.write_text("not a model\n")
    for model in (tmp_path / "missing.bin", not_a_model):
        config = load_config({"input": {"paths": [str(corpus)]},
                              "output": {"path": str(tmp_path / "out")},
                              "executor": {"kind": "local"},
                              "stages": {"language": {"enabled": True, "model": str(model)}}})
        with pytest.raises(ConfigError, match="stages.language.model"):
            siftline.run(config)
    assert not (tmp_path / "out" / "data").exists()


# -- end to end, through the installed console script -------------------------------------------
def corpus_rows() -> list[dict[str, str]]:
    texts = [*LANGUAGES.values(), *MIXED, LANGUAGES["en"].upper(), "   "]
    return [{"id": f"r{i:02d}", "text": t, "domain": "ab"[i % 2]} for i, t in enumerate(texts)]


def siftline_cli(*args: str, cwd: Path) -> dict[str, Any]:
    script = Path(sys.executable).with_name("siftline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([str(script), *args, "--json"], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_run_and_select_through_the_console_script(model: Any, tmp_path: Path) -> None:
    rows = corpus_rows()
    corpus = write_jsonl(tmp_path / "in" / "docs.jsonl", rows)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"input": {"paths": [str(corpus)]},
                                   "output": {"path": str(tmp_path / "out")},
                                   "mixture": {"enabled": False}}))
    stats = siftline_cli("run", str(job), "--stages", "language", "--executor", "local",
                         cwd=tmp_path)["stats"]
    texts = [row["text"] for row in rows[:-1]]
    keep = [datatrove_keeps(model, t, ["en"], 0.65) for t in texts]
    assert 0 < sum(keep) < len(texts)
    assert stats["kept"] == sum(keep)
    assert stats["dropped"] == {"language": len(texts) - sum(keep), "empty": 1}
    assert stats["input_records"] == stats["kept"] + sum(stats["dropped"].values())
    assert stats["language"]["language"] == {"model": "bundled lid.176.ftz",
                                             "languages": ["en"], "threshold": 0.65}
    scored_rows = {r["id"]: r for r in read_scored(tmp_path / "out").to_pylist()}
    assert scored_rows["r00"]["language"] == "en" and scored_rows["r01"]["language_rule"] == \
        "language"

    again = siftline_cli("select", str(tmp_path / "out"), "--set",
                         "stages.language.threshold=0.3", "--set",
                         "stages.language.languages=[en, de]", "--executor", "local",
                         cwd=tmp_path)
    keep = [datatrove_keeps(model, t, ["en", "de"], 0.3) for t in texts]
    assert again["kept"] == sum(keep) > stats["kept"]
    assert again["dropped"] == {"language": len(texts) - sum(keep), "empty": 1}
    kept_ids = set(read_data(tmp_path / "out").column("id").to_pylist())
    assert kept_ids == {row["id"] for row, k in zip(rows, keep, strict=False) if k}


def test_select_redecides_without_loading_the_model(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = write_jsonl(tmp_path / "in.jsonl", corpus_rows())
    out = tmp_path / "out"
    first = siftline.run(load_config({
        "input": {"paths": [str(corpus)]}, "output": {"path": str(out)},
        "executor": {"kind": "local"}, "mixture": {"enabled": False},
        "stages": {"exact_dedupe": {"enabled": False}, "language": {"enabled": True}}})).stats

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-selection must not load the language model")

    monkeypatch.setattr("siftline.stages.language.load_lid", no_model)
    every = [str(lang) for lang in sorted({*LANGUAGES, "es", "it", "pl"})]
    result = CliRunner().invoke(app, ["select", str(out), "--set",
                                      f"stages.language.languages=[{', '.join(every)}]",
                                      "--set", "stages.language.threshold=0.1",
                                      "--executor", "local", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kept"] > first["kept"]
    low = CliRunner().invoke(app, ["select", str(out), "--set",
                                   "stages.language.threshold=0.01", "--executor", "local"])
    assert low.exit_code != 0 and "language_floor" in (low.output + str(low.exception))
