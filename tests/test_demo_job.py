"""The shipped demo job, end to end on a small slice of the standard-library corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siftline.cli.main import app

CONFIG = Path(__file__).parents[1] / "configs" / "default.yaml"


@pytest.mark.slow
def test_default_config_runs_dedupe_and_color_filter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SIFTLINE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", str(CONFIG), "--input", "demo://stdlib?max_bytes=400000", "--output", str(out),
        "--executor", "local", "--json",
        "--set", "stages.color_filter.train.prior.tokens=12000",
        "--set", "stages.color_filter.train.sample.max_bytes=200000",
        "--set", "stages.color_filter.target.holdout_fraction=0.6",
    ])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)["stats"]
    dropped = stats["dropped"]
    assert stats["input_records"] == stats["quarantined"] + stats["kept"] + sum(dropped.values())
    assert dropped["color_filter"] > 0
    cut = stats["color_filter"]["cut"]["groups"]["*"]
    assert cut["kept"] == stats["kept"] == cut["candidates"] // 4
    assert (out / "plots" / "color_score.png").is_file()
    assert (out / "models" / "conditional" / "model.safetensors").is_file()
