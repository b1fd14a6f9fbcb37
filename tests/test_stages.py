"""The stage contract: declarations, the checks where stages are applied, and users' own stages.

A user stage lives in a module written here into a temporary folder outside the checkout and is
named in the config, as a user would; the CLI tests run the installed `siftline` script there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import read_scored, write_jsonl

from siftline.config import StagesConfig, builtin_stage_names, load_config
from siftline.documents import add_local_reasons, from_records
from siftline.errors import ConfigError, StageError
from siftline.job.runner import run
from siftline.stages.chain import BuiltStage, check_contract
from siftline.stages.custom import custom_spec
from siftline.stages.registry import REGISTRY, drop_reasons

USER_MODULE = '''
import pyarrow as pa
import pyarrow.compute as pc


def word_count(log=None, column="n_words"):
    """Adds the number of words; logs each build (one per worker)."""
    if log:
        with open(log, "a") as out:
            out.write("built\\n")

    def stage(table):
        words = pc.list_value_length(pc.utf8_split_whitespace(table.column("text")))
        return table.append_column(column, pc.cast(pc.fill_null(words, 0), pa.int64()))

    return stage


def broken(kind):
    def stage(table):
        if kind == "raise":
            if any("poison" in t for t in table.column("text").to_pylist()):
                raise ValueError("cannot score this")
            return table.append_column("x", pa.array([1.0] * table.num_rows))
        if kind == "drop":
            return table.slice(1)
        if kind == "reorder":
            return table.take(pa.array(list(reversed(range(table.num_rows)))))
        if kind == "column":
            return table.drop_columns(["domain"])
        if kind == "missing":
            return table
        return [1, 2]

    return stage


NOT_CALLABLE = 3
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`user_stages.py` in a folder of its own, importable here and by child processes."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "user_stages.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]))
    yield folder
    sys.modules.pop("user_stages", None)


def corpus(folder: Path, n: int = 60) -> Path:
    records = [{"id": f"d{i:03d}", "domain": "ab"[i % 2],
                "text": " ".join(["word"] * (5 + 3 * i)) + (" poison" if i == 7 else "")}
               for i in range(n)]
    return write_jsonl(folder / "in" / "docs.jsonl", records)


def job(path: Path, out: Path, custom: list[dict[str, Any]], **stages: Any) -> dict[str, Any]:
    return {"input": {"paths": [str(path)]}, "output": {"path": str(out)},
            "executor": {"kind": "local"}, "mixture": {"enabled": False},
            "stages": {"exact_dedupe": {"enabled": False}, **stages, "custom": custom}}


# -- declarations -----------------------------------------------------------------------------
def test_registry_and_config_sections_name_the_same_stages_in_order() -> None:
    assert tuple(REGISTRY) == builtin_stage_names()
    assert all(spec.name == name for name, spec in REGISTRY.items())
    assert set(StagesConfig.model_fields) == {*builtin_stage_names(), "custom"}
    reasons = drop_reasons(load_config({}))
    assert reasons == ("empty", "too_long", "language", "gopher_quality", "gopher_repetition",
                       "fineweb_quality", "c4_quality", "exact_duplicate", "near_duplicate",
                       "classifier", "preselect", "color_filter")


def test_custom_names_must_be_new_and_well_formed() -> None:
    with pytest.raises(ConfigError, match="taken"):
        load_config({"stages": {"custom": [{"name": "preselect", "callable": "m:f"}]}})
    with pytest.raises(ConfigError, match="stages.custom.0.name"):
        load_config({"stages": {"custom": [{"name": "Bad-Name", "callable": "m:f"}]}})
    with pytest.raises(ConfigError, match="module.path:factory"):
        load_config({"stages": {"custom": [{"name": "ok", "callable": "nofactory"}]}})
    with pytest.raises(ConfigError, match="exactly one of tau, share and threshold"):
        load_config({"stages": {"custom": [{"name": "ok", "callable": "m:f",
                                            "cut": {"column": "c", "tau": 2, "share": 0.5}}]}})


def test_overrides_address_a_custom_entry_by_name() -> None:
    data = {"stages": {"custom": [{"name": "mine", "callable": "m:f",
                                   "cut": {"column": "c", "tau": 2}}]}}
    config = load_config(data, {"stages.custom.mine.cut.tau": 8})
    assert config.stages.section("mine").cut.tau == 8
    with pytest.raises(ConfigError, match="no entry named 'other'"):
        load_config(data, {"stages.custom.other.enabled": False})
    only = load_config(data, stages=["mine"])
    assert only.stages.enabled() == ["mine"]
    with pytest.raises(ConfigError, match="did you mean 'mine'"):
        load_config(data, stages=["mien"])


# -- the contract, where stages are applied ----------------------------------------------------
@pytest.mark.parametrize(("kind", "message"), [
    ("drop", "returned 3 rows for 4"),
    ("reorder", "changed the documents' ids or their order"),
    ("column", "without the column(s) ['domain']"),
    ("missing", "without the column(s) ['declared']"),
    ("notable", "returned list, not a pyarrow Table"),
])
def test_contract_violations_are_refused_by_name(user_module: Path, kind: str,
                                                 message: str) -> None:
    entry = load_config({"stages": {"custom": [{"name": "bad", "callable": "user_stages:broken",
                                                "args": {"kind": kind},
                                                "columns": ["declared"] if kind == "missing"
                                                else []}]}})
    spec = custom_spec(entry.stages.section("bad"))
    table = add_local_reasons(from_records([{"id": f"i{k}", "text": f"t {k}"}
                                            for k in range(4)]), 1000)
    with pytest.raises(StageError, match="stage 'bad'") as caught:
        BuiltStage(spec, spec.build(entry))(table)
    assert message in str(caught.value)


def test_built_in_stages_keep_the_contract() -> None:
    table = add_local_reasons(from_records([{"id": "a", "text": "x y z"}]), 1000)
    config = load_config({"stages": {"near_dedupe": {"enabled": True}}})
    for name in ("exact_dedupe", "near_dedupe"):
        spec = REGISTRY[name]
        out = spec.build(config)(table)
        check_contract(spec, table, out)
        table = out


def test_user_stage_that_raises_names_stage_file_and_document(user_module: Path,
                                                              tmp_path: Path) -> None:
    path = corpus(tmp_path)
    config = load_config(job(path, tmp_path / "out", [
        {"name": "fragile", "callable": "user_stages:broken", "args": {"kind": "raise"}}]))
    with pytest.raises(StageError) as caught:
        run(config)
    text = str(caught.value)
    assert "stage 'fragile' raised ValueError: cannot score this" in text
    assert str(path) in text and "on document 'd007'" in text


def test_unimportable_stage_fails_before_any_work(user_module: Path, tmp_path: Path) -> None:
    for callable_, message in (("no_such_module:f", "cannot import 'no_such_module'"),
                               ("user_stages:nothing", "has no attribute 'nothing'"),
                               ("user_stages:NOT_CALLABLE", "is not callable")):
        out = tmp_path / callable_.replace(":", "_")
        config = load_config(job(corpus(tmp_path), out,
                                 [{"name": "u", "callable": callable_}]))
        with pytest.raises(ConfigError, match=f"stages.custom.u.callable: .*{message}"):
            run(config)
        assert not out.exists()


# -- a user's stage through a whole run ----------------------------------------------------------
def _word_count_stage(log: Path, threshold: int) -> dict[str, Any]:
    return {"name": "word_count", "callable": "user_stages:word_count",
            "args": {"log": str(log)},
            "cut": {"column": "n_words", "keep": "top", "threshold": threshold}}


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_user_stage_scores_cuts_and_counts(user_module: Path, tmp_path: Path,
                                           executor: str) -> None:
    log = tmp_path / "builds.log"
    data = job(corpus(tmp_path), tmp_path / "out", [_word_count_stage(log, 50)])
    data["executor"] = {"kind": executor, "num_workers": 1} if executor == "ray" else {
        "kind": "local"}
    stats = run(load_config(data)).stats
    kept = [i for i in range(60) if 5 + 3 * i + (i == 7) >= 50]  # n_words of d{i}
    assert stats["kept"] == len(kept)
    assert stats["dropped"] == {"word_count": 60 - len(kept)}
    assert stats["word_count"]["cut"]["kind"] == "threshold"
    scored = read_scored(tmp_path / "out")
    assert scored.column("n_words").to_pylist()[:3] == [5, 8, 11]
    assert log.read_text().count("built") >= 1


@pytest.mark.slow
def test_user_stage_from_the_console_script_outside_the_checkout(user_module: Path,
                                                                 tmp_path: Path) -> None:
    """`siftline run`, `inspect` and `select` as a user runs them, from their own folder."""
    script = Path(sys.executable).with_name("siftline")
    log = tmp_path / "builds.log"
    config = tmp_path / "job.yaml"
    out = tmp_path / "out"
    config.write_text(yaml.safe_dump(job(corpus(tmp_path), out, [_word_count_stage(log, 50)],
                                         near_dedupe={"enabled": True})))

    def siftline(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(script), *args], cwd=user_module, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    first = json.loads(siftline("run", str(config), "--json").stdout)["stats"]
    assert first["dropped"]["word_count"] > 0
    builds = log.read_text().count("built")
    shown = siftline("inspect", str(out)).stdout
    assert "word_count" in shown
    looser = json.loads(siftline("select", str(out), "--set",
                                 "stages.custom.word_count.cut.threshold=20", "--json").stdout)
    assert looser["kept"] > first["kept"]
    assert looser["word_count"]["cut"]["amount"] == 20
    assert log.read_text().count("built") == builds  # re-selection never ran the stage
    only_dedupe = json.loads(siftline("select", str(out), "--stages", "near_dedupe",
                                      "--json").stdout)
    assert "word_count" not in only_dedupe["dropped"]


def test_select_by_a_stage_the_run_did_not_score_is_an_error(user_module: Path,
                                                              tmp_path: Path) -> None:
    from siftline import select

    out = tmp_path / "out"
    run(load_config(job(corpus(tmp_path), out, [])))
    with pytest.raises(ConfigError, match="no scores for word_count"):
        select(str(out), overrides={"stages.custom": [_word_count_stage(tmp_path / "l", 9)],
                                    "executor.kind": "local"})


def test_readme_example_runs(user_module: Path, tmp_path: Path) -> None:
    """The README's user-stage example, as printed there."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("# my_stages.py")
    code = readme[start:readme.index("```", start)]
    (user_module / "my_stages.py").write_text(textwrap.dedent(code))
    section = readme[readme.index("stages:\n  custom:"):]
    custom = yaml.safe_load(section[:section.index("```")])["stages"]["custom"]
    stats = run(load_config(job(corpus(tmp_path), tmp_path / "out", custom))).stats
    assert stats["kept"] + sum(stats["dropped"].values()) == 60
    assert set(stats["dropped"]) <= {entry["name"] for entry in custom}
    sys.modules.pop("my_stages", None)
