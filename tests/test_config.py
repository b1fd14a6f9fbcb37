"""Configuration: bad settings fail before any work with a message that names the key or path;
overrides, the config hash, secret masking, and runs over an output of another config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import local_config, read_data, tree_bytes, write_jsonl

from siftline import ConfigError, PipelineConfig, load_config
from siftline.config import apply_overrides, parse_set_options
from siftline.io.storage import Storage, s3_options
from siftline.job.plan import make_plan, plan_or_resume, preflight
from siftline.job.runner import run
from siftline.layout import Layout

SECRET = "zz-SECRET-value-9d1e"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """An input folder: one JSON Lines file with two exact duplicates."""
    records = [{"id": f"d{i}", "text": f"document {i % 5}", "domain": "web"} for i in range(7)]
    write_jsonl(tmp_path / "in" / "part.jsonl", records)
    return tmp_path / "in"


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def base(corpus: Path, out: Path) -> dict[str, Any]:
    return {"input": {"paths": [str(corpus)]}, "output": {"path": str(out)},
            "executor": {"kind": "local"}}


def merged(data: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`data` with `extra` merged in section by section (deep for nested mappings)."""
    result = json.loads(json.dumps(data))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def assert_untouched(out: Path, before: dict[str, bytes] | None = None) -> None:
    if before is None:
        assert not out.exists(), f"{out} was created before the configuration was checked"
    else:
        assert {p.relative_to(out).as_posix(): p.read_bytes()
                for p in sorted(out.rglob("*")) if p.is_file()} == before


# -- schema errors: the YAML itself ------------------------------------------------------------
SCHEMA_ERRORS = {
    "unknown-top-level": ({"outputs": {"path": "x"}}, ["outputs", "unknown key"]),
    "unknown-nested": ({"output": {"shard_byts": 1000}}, ["output.shard_byts", "unknown key"]),
    "unknown-deep": ({"input": {"fields": {"txt": "body"}}}, ["input.fields.txt", "unknown key"]),
    "unknown-stage": ({"stages": {"minhash": {"enabled": True}}}, ["stages.minhash"]),
    "bad-type": ({"input": {"split_bytes": "lots"}}, ["input.split_bytes"]),
    "bad-bool": ({"stages": {"exact_dedupe": {"enabled": "maybe"}}},
                 ["stages.exact_dedupe.enabled"]),
    "non-positive": ({"output": {"shard_bytes": 0}}, ["output.shard_bytes"]),
    "bad-literal": ({"executor": {"kind": "spark"}}, ["executor.kind", "'ray'", "'local'"]),
    "bad-compression": ({"output": {"compression": "brotli"}}, ["output.compression"]),
    "bad-regex": ({"input": {"fields": {"domain_from_path": "([a-z]+"}}},
                  ["input.fields.domain_from_path", "regular expression"]),
    "empty-paths": ({"input": {"paths": []}}, ["input.paths"]),
    "section-not-mapping": ({"executor": "local"}, ["executor"]),
    "store-too-small": ({"executor": {"object_store_mb": 10}}, ["executor.object_store_mb"]),
    "store-on-a-cluster": ({"executor": {"kind": "ray", "ray_address": "auto",
                                         "object_store_mb": 256}},
                           ["executor.object_store_mb", "ray_address"]),
}


@pytest.mark.parametrize("case", list(SCHEMA_ERRORS), ids=list(SCHEMA_ERRORS))
def test_schema_error_names_the_key_and_runs_nothing(
    tmp_path: Path, corpus: Path, case: str
) -> None:
    extra, fragments = SCHEMA_ERRORS[case]
    out = tmp_path / "out"
    cfg = write_yaml(tmp_path / "job.yaml", merged(base(corpus, out), extra))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert str(cfg) in message.splitlines()[0]
    for fragment in fragments:
        assert fragment in message
    assert_untouched(out)


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "job.yaml", {"output": {"shard_byts": 1},
                                             "executor": {"kind": "spark"}})
    message = str(pytest.raises(ConfigError, load_config, cfg).value)
    assert "output.shard_byts: unknown key" in message
    assert "executor.kind" in message


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("text", ["- input\n- output\n", "just a string\n", "42\n"],
                         ids=["list", "string", "number"])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    cfg = write_yaml(tmp_path / "job.yaml", text)
    with pytest.raises(ConfigError, match="mapping") as info:
        load_config(cfg)
    assert str(cfg) in str(info.value)


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "job.yaml", "input: {paths: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(cfg)
    assert str(cfg) in str(info.value)


def test_empty_yaml_file_means_defaults(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "job.yaml", "")
    assert load_config(cfg) == PipelineConfig()


# -- path errors: what the config points at ----------------------------------------------------
def test_missing_input_path_fails_before_any_work(tmp_path: Path) -> None:
    missing, out = tmp_path / "no-such-input", tmp_path / "out"
    with pytest.raises(ConfigError, match="no such file or folder") as info:
        run(local_config(missing, out))
    assert str(missing) in str(info.value)
    assert_untouched(out)


def test_glob_matching_nothing_fails_before_any_work(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    pattern = str(corpus / "*.parquet")
    with pytest.raises(ConfigError, match="matches no file") as info:
        run(local_config(pattern, out))
    assert pattern in str(info.value)
    assert_untouched(out)


def test_folder_without_inputs_fails_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an input")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="holds no") as info:
        run(local_config(tmp_path / "empty", out))
    assert str(tmp_path / "empty") in str(info.value)
    assert_untouched(out)


@pytest.mark.parametrize("output_rel", ["in/out", "in/deeper/out", "in"])
def test_output_inside_input_folder(tmp_path: Path, corpus: Path, output_rel: str) -> None:
    before = tree_bytes(tmp_path, ["in"])
    with pytest.raises(ConfigError, match="output.path") as info:
        run(local_config(corpus, tmp_path / output_rel))
    assert "overlaps" in str(info.value)
    assert str(corpus) in str(info.value)
    assert tree_bytes(tmp_path, ["in"]) == before


def test_output_inside_glob_input_folder(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(ConfigError, match="overlaps"):
        run(local_config(str(corpus / "*.jsonl"), corpus / "out"))
    assert not (corpus / "out").exists()


def test_output_inside_question_mark_glob_input_folder(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(ConfigError, match="overlaps"):
        run(local_config(str(corpus / "part.json?"), corpus / "out"))
    assert not (corpus / "out").exists()


def test_output_next_to_input_with_shared_prefix_is_fine(tmp_path: Path, corpus: Path) -> None:
    result = run(local_config(corpus, tmp_path / "in2"))  # "in2" starts with "in" but is apart
    assert result.status == "complete"


def test_output_folder_with_unrelated_files(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    before = {"thesis.tex": b"precious"}
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="thesis.tex") as info:
            run(local_config(corpus, out), overwrite=overwrite)
        assert str(out) in str(info.value)
        assert_untouched(out, before)


def test_output_path_that_is_a_file(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out.parquet"
    out.write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        run(local_config(corpus, out))
    assert out.read_bytes() == b"x"


# -- overrides ---------------------------------------------------------------------------------
def test_set_without_equals_sign() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE") as info:
        parse_set_options(["output.path=x", "output.shard_bytes"])
    assert "output.shard_bytes" in str(info.value)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set_options(["=3"])


def test_set_keeps_everything_after_the_first_equals_sign() -> None:
    assert parse_set_options(["input.fields.domain_from_path=a=(b)", " output.path =x"]) == {
        "input.fields.domain_from_path": "a=(b)", "output.path": "x"}


def test_dotted_overrides_are_yaml_scalars(tmp_path: Path, corpus: Path) -> None:
    cfg = write_yaml(tmp_path / "job.yaml", base(corpus, tmp_path / "out"))
    overrides = parse_set_options([
        "output.shard_bytes=64MB",
        "stages.exact_dedupe.enabled=false",
        "stages.exact_dedupe.partitions=3",
        "input.split_bytes=1KiB",
        "input.paths=[a.jsonl, b.jsonl]",
        "input.fields.domain=meta.source",
        "storage.s3.anon=true",
    ])
    config = load_config(cfg, overrides)
    assert config.output.shard_bytes == 64_000_000
    assert config.stages.exact_dedupe.enabled is False
    assert config.stages.enabled() == []
    assert config.stages.exact_dedupe.partitions == 3
    assert config.input.split_bytes == 1024
    assert config.input.paths == ["a.jsonl", "b.jsonl"]
    assert config.input.fields.domain == "meta.source"
    assert config.storage.s3.anon is True
    assert config.output.path == str(tmp_path / "out")  # untouched keys keep the file's value


def test_override_names_the_bad_key() -> None:
    with pytest.raises(ConfigError, match="output.shard_byts: unknown key"):
        load_config(None, {"output.shard_byts": "1MB"})
    with pytest.raises(ConfigError, match="input.split_bytes"):
        load_config(None, {"input.split_bytes": "lots"})
    with pytest.raises(ConfigError, match="output.path: Input should be a valid string"):
        load_config(None, {"output.path.deeper": "x"})
    with pytest.raises(ConfigError, match="output.path.deeper: output is not a section"):
        load_config({"output": "out"}, {"output.path.deeper": "x"})
    with pytest.raises(ConfigError, match="invalid override output.path.deeper: path is not"):
        load_config({"output": {"path": "out"}}, {"output.path.deeper": "x"})


def test_overrides_never_touch_the_callers_dict() -> None:
    data = {"output": {"path": "a"}, "stages": {"exact_dedupe": {"enabled": True}}}
    snapshot = json.loads(json.dumps(data))
    config = load_config(data, {"output.path": "b", "stages.exact_dedupe.enabled": "false"})
    assert data == snapshot
    assert config.output.path == "b" and not config.stages.exact_dedupe.enabled
    assert apply_overrides({}, {"a.b.c": "1"}) == {"a": {"b": {"c": "1"}}}


def test_pipeline_run_accepts_a_yaml_path_every_time(tmp_path: Path, corpus: Path) -> None:
    import siftline.job.runner  # noqa: F401 - what any earlier siftline.run() call has done

    cfg = write_yaml(tmp_path / "job.yaml", base(corpus, tmp_path / "out"))
    assert siftline.run(str(cfg)).status == "complete"
    assert siftline.run(str(cfg)).status == "already_complete"


# -- the config hash ---------------------------------------------------------------------------
def test_sha256_ignores_where_and_how_the_job_runs() -> None:
    reference = load_config({"input": {"paths": ["in"]}, "output": {"path": "out"}}).sha256()
    same = [
        {"executor.kind": "local"},
        {"executor.kind": "ray", "executor.ray_address": "ray://head:10001",
         "executor.num_workers": "8"},
        {"output.work_dir": "/scratch/job"},
        {"output.path": "/elsewhere/out/"},
        {"storage.s3.endpoint_url": "http://127.0.0.1:9000", "storage.s3.region": "eu-west-1",
         "storage.s3.access_key_id": "AKID", "storage.s3.secret_access_key": SECRET},
    ]
    for overrides in same:
        config = load_config({"input": {"paths": ["in"]}, "output": {"path": "out"}}, overrides)
        assert config.sha256() == reference, overrides


def test_sha256_changes_with_what_decides_the_output_bytes() -> None:
    data = {"input": {"paths": ["in"]}, "output": {"path": "out"}}
    reference = load_config(data).sha256()
    changes = [
        {"input.paths": ["other"]},
        {"input.split_bytes": "1MB"},
        {"input.max_doc_bytes": "10"},
        {"input.fields.text": "body"},
        {"input.fields.domain_from_path": "/(\\w+)/"},
        {"output.shard_bytes": "1MB"},
        {"output.compression": "snappy"},
        {"stages.exact_dedupe.enabled": "false"},
    ]
    hashes = {reference}
    for overrides in changes:
        digest = load_config(data, overrides).sha256()
        assert digest != reference, overrides
        hashes.add(digest)
    assert len(hashes) == len(changes) + 1
    assert load_config(data).sha256() == reference  # stable


# -- secrets -----------------------------------------------------------------------------------
def test_public_dict_masks_secrets() -> None:
    config = load_config({"storage": {"s3": {
        "access_key_id": "AKID-" + SECRET, "secret_access_key": SECRET,
        "session_token": "token-" + SECRET, "endpoint_url": "http://127.0.0.1:9000"}}})
    public = config.public_dict()
    s3 = public["storage"]["s3"]
    assert s3["secret_access_key"] == s3["access_key_id"] == s3["session_token"] == "**********"
    assert s3["endpoint_url"] == "http://127.0.0.1:9000"
    for text in (json.dumps(public), repr(config), str(config), config.model_dump_json()):
        assert SECRET not in text
    options = s3_options(config.storage.s3)  # the one place secrets are unwrapped
    assert options["secret"] == SECRET and options["key"] == "AKID-" + SECRET
    assert SECRET not in str(Storage(config.storage.s3).__getstate__())


def test_errors_of_a_config_with_secrets_do_not_show_them(tmp_path: Path) -> None:
    s3 = {"access_key_id": SECRET, "secret_access_key": SECRET, "secret": SECRET}
    cfg = write_yaml(tmp_path / "job.yaml", {"storage": {"s3": s3},
                                             "executor": {"kind": "spark"}})
    message = str(pytest.raises(ConfigError, load_config, cfg).value)
    assert "storage.s3.secret: unknown key" in message
    assert SECRET not in message
    bad_type = {"storage": {"s3": {"secret_access_key": [SECRET]}}}
    message = str(pytest.raises(ConfigError, load_config, bad_type).value)
    assert "storage.s3.secret_access_key" in message and SECRET not in message


# -- a run over an existing output -------------------------------------------------------------
def test_finished_output_of_another_config_needs_overwrite(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    first = run(local_config(corpus, out))
    assert first.stats["dropped"] == {"exact_duplicate": 2}
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    other = local_config(corpus, out, **{"stages.exact_dedupe.enabled": False})
    with pytest.raises(ConfigError, match="--overwrite") as info:
        run(other)
    assert "different config" in str(info.value) and str(out) in str(info.value)
    assert_untouched(out, files)

    again = run(local_config(corpus, out, **{"executor.kind": "local"}))
    assert again.status == "already_complete"  # executor settings are not part of the config

    replaced = run(other, overwrite=True)
    assert replaced.status == "complete"
    assert replaced.stats["dropped"] == {}
    assert replaced.stats["kept"] == replaced.stats["input_records"] == 7
    assert read_data(out).num_rows == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_sha256"] == other.sha256()
    assert sorted(p.name for p in out.iterdir()) == ["data", "manifest.json", "plots", "scored",
                                                     "stats.json", "weights.json"]


def test_unfinished_output_of_another_config_needs_overwrite(
    tmp_path: Path, corpus: Path
) -> None:
    out = tmp_path / "out"
    started = local_config(corpus, out)
    storage = Storage()
    paths = preflight(started, storage)
    plan_or_resume(make_plan(started, paths, storage), Layout.for_output(str(out)), storage)
    assert (out / "_work" / "plan.json").is_file()  # as if the first run had been killed

    other = local_config(corpus, out, **{"output.compression": "gzip"})
    with pytest.raises(ConfigError, match="--overwrite") as info:
        run(other)
    assert "unfinished run" in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["_work"]

    resumed = run(started)
    assert resumed.status == "complete" and resumed.stats["kept"] == 5


def test_overwrite_with_a_bad_input_keeps_the_previous_output(
    tmp_path: Path, corpus: Path
) -> None:
    out = tmp_path / "out"
    run(local_config(corpus, out))
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="no such file or folder"):
        run(local_config(tmp_path / "typo", out), overwrite=True)
    assert_untouched(out, files)


def test_same_output_folder_spelt_differently_is_already_complete(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash leaves out output.path, so 'out', 'out/' and its absolute path are one job."""
    monkeypatch.chdir(tmp_path)
    assert run(local_config(corpus, "out")).status == "complete"
    assert run(local_config(corpus, "out/")).status == "already_complete"
    assert run(local_config(corpus, tmp_path / "out")).status == "already_complete"


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parents[1] / "configs")
                                        .glob("*.yaml")))
def test_shipped_configs_validate(name: str) -> None:
    config = load_config(Path(__file__).parents[1] / "configs" / name)
    assert config.stages.enabled()
