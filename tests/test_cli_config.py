"""`siftline --version`, `siftline config` (every key, commented, loading back to the same
config), "did you mean" for unknown keys, and the source an error names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import invoke, write_jsonl
from pydantic import BaseModel

from siftline import ConfigError, PipelineConfig, load_config
from siftline.cli.config_render import MASK
from siftline.config import TrainJobConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SECRET = "zz-SECRET-value-4b7c"


pytestmark = pytest.mark.usefixtures("wide_console")


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def printed(*args: Any) -> str:
    result = invoke("config", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def reload(text: str, tmp_path: Path) -> PipelineConfig:
    """What `siftline run` would make of the printed text."""
    path = tmp_path / "printed.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def comment_above(text: str, section: str, key: str) -> str:
    """The comment line right above `key:` inside the dotted `section`."""
    lines = text.splitlines()
    depth, at = 0, 0
    for part in section.split("."):
        at = next(i for i in range(at, len(lines)) if lines[i] == " " * depth + f"{part}:")
        depth += 2
    i = next(i for i in range(at, len(lines)) if lines[i].startswith(" " * depth + f"{key}:"))
    assert lines[i - 1].startswith(" " * depth + "# "), lines[i - 1]
    return lines[i - 1].strip()


# -- --version ---------------------------------------------------------------------------------
def test_version_prints_the_installed_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"siftline {version('siftline')}"


# -- config ------------------------------------------------------------------------------------
def test_config_without_a_file_prints_the_defaults_with_descriptions(tmp_path: Path) -> None:
    text = printed()
    assert reload(text, tmp_path) == PipelineConfig()
    assert comment_above(text, "stages.near_dedupe", "threshold").startswith(
        "# Jaccard similarity")
    assert "[float > 0.0, < 1.0]" in comment_above(text, "stages.near_dedupe", "threshold")
    assert comment_above(text, "output", "work_dir") == \
        "# Scratch space; default OUTPUT/_work. [string, or null]"
    assert comment_above(text, "input", "format").startswith("# auto: each file's format")
    assert comment_above(text, "input", "format").endswith("[auto | jsonl | parquet | hf]")
    assert "  split_bytes: 64MB\n" in text
    assert not re.search(r"; default: [^][]*\]$", text, re.M)  # nothing differs from them
    assert text.startswith("# siftline configuration, resolved from defaults.")


def test_every_leaf_has_a_comment() -> None:
    lines = printed().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip() and not line.lstrip().startswith(("#", "-")) and \
                not line.endswith(":"):
            assert lines[i - 1].lstrip().startswith("# "), line


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_the_shipped_configs_load_back(name: str, tmp_path: Path) -> None:
    assert reload(printed(CONFIGS / name), tmp_path) == load_config(CONFIGS / name)


def test_a_file_with_flags_loads_back_and_notes_the_defaults(tmp_path: Path) -> None:
    data = {
        "input": {"paths": ["in/*.jsonl"], "split_bytes": 1500, "batch_bytes": "3MiB",
                  "fields": {"domain_from_path": r"/(\w+)/[^/]+$", "text": "body: #1"}},
        "output": {"path": "out/x"},
        "stages": {
            "color_filter": {"target": {"paths": ["t.jsonl"], "template": "{q}\n{a}"}},
            "gopher_repetition": {"top_n_grams": {2: None, 3: 0.5}},
            "custom": [{"name": "mine", "callable": "my.mod:make",
                        "args": {"words": ["yes", "null", "- x"], "n": 3, "nested": {"a": 1.5}},
                        "columns": ["mine_score"],
                        "cut": {"column": "mine_score", "share": 0.5}}],
            "preselect": {"references": [{"path": "m1", "score": 0.4},
                                         {"path": "m2", "score": 0.6, "name": "big"}]},
        },
        "mixture": {"schedule": [{"start": 0.0, "end": 1.0, "tau": 2}], "train_tokens": "1B"},
        "evaluation": {"target": {"domain": "docs"}, "budgets": [100, 200]},
    }
    path = write_yaml(tmp_path / "job.yaml", data)
    flags = ["--set", "stages.near_dedupe.threshold=0.7", "--stages", "near_dedupe,mine",
             "--executor", "local"]
    text = printed(path, *flags)
    expected = load_config(path, {"stages.near_dedupe.threshold": 0.7, "executor.kind": "local"},
                           stages=["near_dedupe", "mine"])
    assert reload(text, tmp_path) == expected
    assert "default: 0.8]" in comment_above(text, "stages.near_dedupe", "threshold")
    assert f"resolved from {path} + command-line options." in text.splitlines()[0]


def test_secrets_are_masked(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "job.yaml", {"storage": {"s3": {"secret_access_key": SECRET}}})
    text = printed(path)
    assert SECRET not in text and f"secret_access_key: '{MASK}'" in text
    assert "Secrets are masked" in text
    assert SECRET not in printed(path, "--json")


def test_config_json_is_the_plain_resolved_config(tmp_path: Path) -> None:
    result = invoke("config", "--set", "stages.near_dedupe.enabled=true", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = load_config(None, {"stages.near_dedupe.enabled": True})
    assert data == expected.public_dict()
    assert load_config(data) == expected


# -- did you mean ------------------------------------------------------------------------------
def test_an_unknown_yaml_key_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "job.yaml", {"stages": {"near_dedupe": {"treshold": 0.5}}})
    for command in ("config", "validate", "run"):
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        assert f"invalid configuration ({path}):" in result.stderr
        assert "stages.near_dedupe.treshold: unknown key (did you mean 'threshold'?)" in \
            result.stderr


def test_an_unknown_set_key_suggests_the_closest_one() -> None:
    result = invoke("config", "--set", "stages.near_dedup.threshold=0.5")
    assert result.exit_code == 2, result.output
    assert "stages.near_dedup: unknown key (did you mean 'near_dedupe'?)" in result.stderr
    result = invoke("config", "--set", "output.shard_byts=1MB")
    assert "output.shard_byts: unknown key (did you mean 'shard_bytes'?)" in result.stderr


@pytest.mark.parametrize(
    ("data", "model", "said"),
    [
        ({"stages": {"custom": [{"name": "a", "callable": "m:f", "cutt": None}]}},
         PipelineConfig, "stages.custom.0.cutt: unknown key (did you mean 'cut'?)"),
        ({"mixture": {"schedule": [{"start": 0, "end": 1, "tau": 1, "ned": 1}]}},
         PipelineConfig, "mixture.schedule.0.ned: unknown key (did you mean 'end'?)"),
        ({"evaluation": {"target": {"pahts": ["x"]}}},
         PipelineConfig, "evaluation.target.pahts: unknown key (did you mean 'paths'?)"),
        ({"sampel": {}}, TrainJobConfig, "sampel: unknown key (did you mean 'sample'?)"),
        ({"zzzz": 1}, PipelineConfig, "zzzz: unknown key\n"),
    ],
    ids=["list-entry", "schedule-phase", "optional-section", "other-model", "nothing-close"],
)
def test_suggestions_follow_the_section_the_key_is_in(data: dict[str, Any], model: Any,
                                                      said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data, model=model)
    assert said in str(caught.value) + "\n"


# -- the source an error names -----------------------------------------------------------------
def test_flag_errors_name_the_command_line_not_a_dict(tmp_path: Path) -> None:
    result = invoke("config", "--set", "stages.near_dedupe.threshold=2")
    assert result.exit_code == 2, result.output
    assert "invalid configuration (defaults + command-line options):" in result.stderr
    assert "stages.near_dedupe.threshold" in result.stderr
    path = write_yaml(tmp_path / "job.yaml", {"output": {"path": str(tmp_path / "out")}})
    result = invoke("validate", path, "--set", "stages.near_dedupe.threshold=2")
    assert f"invalid configuration ({path} + command-line options):" in result.stderr
    result = invoke("train-lm", "--set", "model.d_model=2")
    assert result.exit_code == 2, result.output
    assert "invalid configuration (defaults + command-line options):" in result.stderr


def test_errors_over_a_finished_run_name_its_manifest(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "in" / "a.jsonl",
                         [{"id": f"d{i}", "text": f"text {i % 3}", "domain": "web"}
                          for i in range(6)])
    out = tmp_path / "out"
    done = invoke("run", write_yaml(tmp_path / "job.yaml", {
        "input": {"paths": [str(corpus)]}, "output": {"path": str(out)},
        "executor": {"kind": "local"}}), "--quiet")
    assert done.exit_code == 0, done.output
    for args in (["select", out, "--set", "stages.near_dedupe.threshold=2"],
                 ["weights", out, "--set", "mixture.max_epochs=0"]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert f"invalid configuration ({out}/manifest.json + command-line options):" in \
            result.stderr
        assert "(dict" not in result.stderr


# -- the installed console script --------------------------------------------------------------
def test_console_script_prints_a_config_that_loads_back(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("siftline")
    assert script.is_file(), f"{script} is missing: is the package installed in this venv?"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env=env, check=False)

    shown = call("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"siftline {version('siftline')}"
    done = call("config", str(CONFIGS / "default.yaml"), "--output", "elsewhere")
    assert done.returncode == 0, done.stderr
    assert reload(done.stdout, tmp_path) == load_config(CONFIGS / "default.yaml",
                                                        {"output.path": "elsewhere"})


# Leaf keys allowed to go without a Field description, each with the reason (none today).
UNDESCRIBED: dict[str, str] = {}


def _sections_in(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation holds (`X`, `X | None`, `list[X]`, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _sections_in(arg)]


def _undescribed(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> list[str]:
    """Dotted keys of `model`'s leaves (anything but a nested section) without a description,
    through every section reachable from it: optional ones and list entries too."""
    missing = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        if not section and not field.description and key not in UNDESCRIBED:
            missing.append(key)
        for sub in _sections_in(field.annotation):
            if sub not in seen:
                seen.add(sub)
                missing += _undescribed(sub, f"{key}.", seen)
    return missing


def test_every_leaf_key_has_a_description() -> None:
    """`siftline config` explains each key by its Field description: a key without one shows
    only its type."""
    seen: set[type[BaseModel]] = set()
    missing = [*_undescribed(PipelineConfig, "", seen),
               *_undescribed(TrainJobConfig, "train-lm: ", seen)]
    assert not missing, f"keys without a description: {missing}"
    text = printed()
    assert comment_above(text, "executor", "kind").startswith("# Where the tasks run")
