"""The `siftline` command through typer's CliRunner, plus one call of the installed script."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from helpers import invoke, read_data, tree_bytes, without_measurements, write_jsonl

DOMAINS = ("web", "code", "books")


pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Two files, three domains, 7 exact duplicates (within and across files), 1 bad line."""
    a = [{"id": f"a{i:02d}", "text": f"text number {i % 6}", "domain": DOMAINS[i % 3]}
         for i in range(9)]
    b = [{"id": f"b{i:02d}", "text": f"text number {i}", "domain": "books"} for i in range(4)]
    write_jsonl(tmp_path / "in" / "a.jsonl", [*a[:4], b"[1, 2]", *a[4:]])
    write_jsonl(tmp_path / "in" / "b.jsonl", b)
    return tmp_path / "in"


INPUT_RECORDS, QUARANTINED, DUPLICATES = 14, 1, 7


def config_file(tmp_path: Path, corpus: Path, out: Path, **sections: Any) -> Path:
    data: dict[str, Any] = {"input": {"paths": [str(corpus)]}, "output": {"path": str(out)},
                            "executor": {"kind": "local"}}
    data.update(sections)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_json(*args: str) -> dict[str, Any]:
    result = invoke("run", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_invariant(stats: dict[str, Any]) -> None:
    dropped = sum(stats["dropped"].values())
    assert stats["input_records"] == stats["quarantined"] + stats["kept"] + dropped
    assert stats["accounting"].endswith("holds")


def data_rows(out: Path) -> int:
    return read_data(out).num_rows


# -- validate ----------------------------------------------------------------------------------
def test_validate_ok_plans_without_writing(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    result = invoke("validate", config_file(tmp_path, corpus, out))
    assert result.exit_code == 0, result.output
    assert "config OK: 2 input file(s), 2 split(s)" in result.stdout
    assert "exact_dedupe" in result.stdout and str(out) in result.stdout
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "args", "fragments"),
    [
        ({"output": {"shard_byts": 10}}, [], ["output.shard_byts", "unknown key"]),
        ({"executor": {"kind": "spark"}}, [], ["executor.kind"]),
        ({}, ["--set", "input.split_bytes=lots"], ["input.split_bytes"]),
        ({}, ["--set", "output.compression"], ["--set expects KEY=VALUE", "output.compression"]),
        ({}, ["--executor", "spark"], ["executor.kind"]),
        ({}, ["--stages", "exact_dedupe,minhash"], ["--stages", "minhash"]),
        ({}, ["--input", "no-such-folder"], ["no-such-folder", "no such file or folder"]),
    ],
    ids=["unknown-key", "bad-literal", "bad-type", "set-without-equals", "bad-executor",
         "unknown-stage", "missing-input"],
)
def test_validate_errors_exit_2_naming_the_key(
    tmp_path: Path, corpus: Path, extra: dict[str, Any], args: list[str], fragments: list[str]
) -> None:
    out = tmp_path / "out"
    cfg = config_file(tmp_path, corpus, out)
    if extra:
        data = yaml.safe_load(cfg.read_text())
        for section, values in extra.items():
            data[section].update(values)
        cfg.write_text(yaml.safe_dump(data))
    for command in ("validate", "run"):
        result = invoke(command, cfg, *args)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert "error:" in result.stderr
        for fragment in fragments:
            assert fragment in result.stderr
        assert not out.exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = invoke("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "config file not found" in result.stderr and "nope.yaml" in result.stderr


# -- run ---------------------------------------------------------------------------------------
def test_run_flags_override_the_file_and_print_json(tmp_path: Path, corpus: Path) -> None:
    cfg = config_file(tmp_path, tmp_path / "elsewhere", tmp_path / "not-this-one",
                      executor={"kind": "ray"})
    out = tmp_path / "out"
    payload = run_json(cfg, "--input", corpus / "a.jsonl", "--input", corpus / "b.jsonl",
                       "--output", out, "--executor", "local")
    assert payload["status"] == "complete"
    assert payload["output"] == str(out)
    stats = payload["stats"]
    assert_invariant(stats)
    assert stats["input_records"] == INPUT_RECORDS
    assert stats["quarantined"] == QUARANTINED
    assert stats["dropped"] == {"exact_duplicate": DUPLICATES}
    assert set(stats["by_domain"]) == set(DOMAINS)
    assert stats == json.loads((out / "stats.json").read_text())
    assert data_rows(out) == stats["kept"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"]["kind"] == "local"
    assert not (tmp_path / "not-this-one").exists()

    again = run_json(cfg, "--input", corpus / "a.jsonl", "--input", corpus / "b.jsonl",
                     "--output", out, "--executor", "local")
    assert again["status"] == "already_complete" and again["stats"] == stats


def test_stages_flag_turns_exact_dedupe_off(tmp_path: Path, corpus: Path) -> None:
    cfg = config_file(tmp_path, corpus, tmp_path / "unused")
    default = run_json(cfg, "--output", tmp_path / "dedup")["stats"]
    none = run_json(cfg, "--output", tmp_path / "all", "--stages", "")["stats"]
    named = run_json(cfg, "--output", tmp_path / "named", "--stages", " exact_dedupe ")["stats"]

    assert default["dropped"] == named["dropped"] == {"exact_duplicate": DUPLICATES}
    assert none["dropped"] == {}
    assert none["kept"] == INPUT_RECORDS - QUARANTINED == default["kept"] + DUPLICATES
    for stats in (default, none, named):
        assert_invariant(stats)
    assert data_rows(tmp_path / "all") == none["kept"]
    manifest = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert manifest["config"]["stages"]["exact_dedupe"]["enabled"] is False


def test_unknown_stage_exits_2_before_any_work(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", config_file(tmp_path, corpus, out), "--stages", "dedupe")
    assert result.exit_code == 2
    assert "unknown stage(s) 'dedupe'" in result.stderr and "exact_dedupe" in result.stderr
    assert not out.exists()


def test_quiet_prints_nothing_on_stdout(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", config_file(tmp_path, corpus, out), "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_default_run_reports_tables_on_stderr(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", config_file(tmp_path, corpus, out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "records by domain" in result.stderr
    assert f"output: {out} (complete)" in result.stderr
    assert ": holds" in result.stderr
    repeat = invoke("run", config_file(tmp_path, corpus, out))
    assert f"output: {out} (already_complete)" in repeat.stderr


def test_different_config_over_finished_output_exits_2_until_overwrite(
    tmp_path: Path, corpus: Path
) -> None:
    out = tmp_path / "out"
    cfg = config_file(tmp_path, corpus, out)
    run_json(cfg)
    before = tree_bytes(out, ["data", "scored"])
    refused = invoke("run", cfg, "--set", "output.compression=gzip")
    assert refused.exit_code == 2
    assert "--overwrite" in refused.stderr
    assert tree_bytes(out, ["data", "scored"]) == before
    replaced = run_json(cfg, "--set", "output.compression=gzip", "--overwrite")
    assert replaced["status"] == "complete"
    assert tree_bytes(out, ["data", "scored"]) != before


def test_output_folder_named_like_a_number(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run", config_file(tmp_path, corpus, tmp_path / "x"), "--output", "2024",
                    "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "2024" / "manifest.json").is_file()


# -- inspect -----------------------------------------------------------------------------------
def test_inspect_shows_domains_and_accounting(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    stats = run_json(config_file(tmp_path, corpus, out))["stats"]
    result = invoke("inspect", out)
    assert result.exit_code == 0, result.output
    assert "status: complete" in result.stdout
    assert "records by domain" in result.stdout
    for domain in DOMAINS:
        assert domain in result.stdout
    assert "holds" in result.stdout
    assert f"kept {stats['kept']:,}" in result.stdout
    assert f"exact_duplicate {DUPLICATES}" in result.stdout

    as_json = invoke("inspect", out, "--json")
    assert json.loads(as_json.stdout)["stats"] == stats


def test_inspect_of_a_folder_without_a_run_exits_2(tmp_path: Path) -> None:
    result = invoke("inspect", tmp_path)
    assert result.exit_code == 2
    assert "no finished run" in result.stderr


# -- select ------------------------------------------------------------------------------------
def test_select_re_decides_from_scored_parts(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    first = run_json(config_file(tmp_path, corpus, out))["stats"]
    scored, kept_rows = tree_bytes(out, ["scored"]), read_data(out).to_pylist()
    assert len(kept_rows) == first["kept"]

    kept_all = invoke("select", out, "--stages", "", "--json")
    assert kept_all.exit_code == 0, kept_all.output
    stats = json.loads(kept_all.stdout)
    assert_invariant(stats)
    assert "exact_duplicate" not in stats["dropped"]
    assert stats["kept"] == first["kept"] + DUPLICATES
    assert stats["input_records"] == first["input_records"]
    assert stats["quarantined"] == first["quarantined"]
    assert stats == json.loads((out / "stats.json").read_text())
    assert data_rows(out) == stats["kept"]
    ids = read_data(out).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == stats["kept"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert sum(d["rows"] for d in manifest["outputs"]["data"]) == stats["kept"]

    deduped = invoke("select", out, "--stages", "exact_dedupe", "--json")
    assert deduped.exit_code == 0, deduped.output
    again = json.loads(deduped.stdout)
    assert_invariant(again)
    assert without_measurements(again) == without_measurements(first)
    assert read_data(out).to_pylist() == kept_rows
    assert tree_bytes(out, ["scored"]) == scored  # same decisions, same bytes

    repeat = invoke("select", out)  # stages of the last selection; idempotent
    assert repeat.exit_code == 0, repeat.output
    assert "holds" in repeat.stderr
    assert read_data(out).to_pylist() == kept_rows
    assert tree_bytes(out, ["scored"]) == scored


def test_select_with_the_same_decisions_rewrites_identical_shards(
    tmp_path: Path, corpus: Path
) -> None:
    out = tmp_path / "out"
    run_json(config_file(tmp_path, corpus, out))
    original = tree_bytes(out, ["data", "scored"])
    assert invoke("select", out, "--quiet").exit_code == 0
    assert read_data(out).schema.field("text").nullable is False
    assert tree_bytes(out, ["data", "scored"]) == original


def test_select_rewrites_identical_shards_of_parts_many_pages_long(tmp_path: Path) -> None:
    """Parts of several read batches and several Parquet pages: the run writes from the
    staged part (one chunk per batch), `select` from one re-read column, and the shards must
    still be the same bytes (they were not before the writer stopped depending on chunks)."""
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "théta", "  ", "\n"]
    records = [{"id": f"d{i:05d}", "text": " ".join(rng.choices(words, k=rng.randint(50, 900))),
                "domain": "web"} for i in range(1500)]
    corpus = write_jsonl(tmp_path / "in" / "c.jsonl", records)
    out = tmp_path / "out"
    stats = run_json(config_file(tmp_path, corpus, out, input={
        "paths": [str(corpus)], "batch_bytes": 200_000}))["stats"]
    assert stats["kept"] == 1500
    assert max(pq.ParquetFile(p).metadata.row_group(0).column(1).total_uncompressed_size
               for p in (out / "data").glob("*.parquet")) > 2 << 20  # pages of ~1 MB each
    original = tree_bytes(out, ["data", "scored"])
    assert invoke("select", out, "--quiet").exit_code == 0
    assert tree_bytes(out, ["data", "scored"]) == original


def test_select_with_small_shards_removes_stale_shards(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    run_json(config_file(tmp_path, corpus, out, output={"path": str(out), "shard_bytes": 20}))
    many = sorted(p.name for p in (out / "data").iterdir())
    assert invoke("select", out, "--stages", "", "--quiet").exit_code == 0
    more = sorted(p.name for p in (out / "data").iterdir())
    assert len(more) > len(many)
    assert invoke("select", out, "--stages", "exact_dedupe", "--quiet").exit_code == 0
    assert sorted(p.name for p in (out / "data").iterdir()) == many


def test_select_of_a_folder_without_a_run_exits_2(tmp_path: Path) -> None:
    result = invoke("select", tmp_path)
    assert result.exit_code == 2
    assert "manifest.json" in result.stderr


def test_select_with_a_config_holding_credentials(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    cfg = config_file(tmp_path, corpus, out, storage={"s3": {
        "access_key_id": "AKIDCLI", "secret_access_key": "cli-secret-value"}})
    first = run_json(cfg)["stats"]
    result = invoke("select", out, "--config", cfg, "--stages", "", "--json")
    assert result.exit_code == 0, repr(result.exception)
    assert json.loads(result.stdout)["kept"] == first["kept"] + DUPLICATES


# -- the installed console script --------------------------------------------------------------
def test_installed_siftline_script(tmp_path: Path, corpus: Path) -> None:
    script = Path(sys.executable).with_name("siftline")
    assert script.is_file(), f"{script} is missing: is the package installed in this venv?"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [str(script), "run", str(config_file(tmp_path, corpus, out)), "--json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "complete"
    assert_invariant(payload["stats"])
    assert payload["stats"]["dropped"] == {"exact_duplicate": DUPLICATES}
