"""`executor.kind: auto`: a small job runs in-process (Ray's ~10 s start-up would dominate), a
bigger one on Ray, a cluster (`ray_address`) or a GPU stage always on Ray. The decision is
checked on planned inputs without running them; one run through the console script shows the
message and the record of the choice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import write_jsonl
from typer.testing import CliRunner

from siftline import load_config
from siftline.cli.main import app
from siftline.config import ExecutorConfig, PipelineConfig, parse_set_options
from siftline.executors import COMPRESSION_RATIO, choose_executor, planned_bytes
from siftline.io.storage import Storage
from siftline.job.plan import load_splits, make_plan, preflight
from siftline.job.runner import job_executor
from siftline.stages.registry import enabled_specs

SCRIPT = Path(sys.executable).with_name("siftline")


def _docs(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}{i:03d}", "text": f"document {prefix} number {i} " * 4,
             "domain": "web"} for i in range(count)]


def _choice(tmp_path: Path, *sets: str):
    """The executor `run` would pick for these `--set` options, from the real plan."""
    config = load_config(None, {"output.path": str(tmp_path / "out"),
                                **parse_set_options(list(sets))})
    storage = Storage()
    plan = make_plan(config, preflight(config, storage), storage)
    return job_executor(config, enabled_specs(config), plan), load_splits(plan)


def test_auto_is_the_default() -> None:
    assert PipelineConfig().executor.kind == "auto"
    assert load_config(None, {"executor.kind": "auto"}).executor.auto_local_bytes == 64_000_000


def test_a_tiny_input_runs_in_process(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", _docs("a", 28))
    choice, splits = _choice(tmp_path, f"input.paths=[{tmp_path / 'in'}]")
    assert len(splits) == 1
    assert (choice.kind, choice.auto) == ("local", True)
    assert choice.message().startswith("executor auto: local (1 split, ")
    assert "start-up would dominate" in choice.message()


def test_several_splits_over_the_threshold_take_ray(tmp_path: Path) -> None:
    for name in "abc":
        write_jsonl(tmp_path / "in" / f"{name}.jsonl", _docs(name, 40))
    args = (f"input.paths=[{tmp_path / 'in'}]", "executor.auto_local_bytes=1KB")
    choice, splits = _choice(tmp_path, *args)
    assert len(splits) == 3 and planned_bytes(splits) > 1000
    assert choice.kind == "ray" and "executor.auto_local_bytes 1 KB" in choice.reason
    below, _ = _choice(tmp_path, *args[:1])  # the same input under the default 64 MB
    assert below.kind == "local" and "3 splits" in below.reason


def test_a_cluster_or_a_gpu_stage_forces_ray() -> None:
    tiny = {"splits": 1, "nbytes": 3000}
    cluster = ExecutorConfig(kind="auto", ray_address="ray://head:10001")
    assert choose_executor(cluster, **tiny).kind == "ray"
    assert "ray_address" in choose_executor(cluster, **tiny).reason
    assert choose_executor(ExecutorConfig(), **tiny, gpus=0.5).kind == "ray"
    for kind in ("local", "ray"):  # a kind that is named is used as it is, and not announced
        named = choose_executor(ExecutorConfig(kind=kind), splits=100, nbytes=10**12)
        assert (named.kind, named.auto) == (kind, False)


def test_compressed_input_counts_as_its_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "a.jsonl.zst", _docs("z", 50), compression="zstd")
    _, splits = _choice(tmp_path, f"input.paths=[{path}]")
    assert planned_bytes(splits) == COMPRESSION_RATIO * path.stat().st_size


def test_run_says_it_chose_local_and_records_it(tmp_path: Path) -> None:
    """The console script on a 28-line input: one line says the choice; stats.json and the
    manifest keep it; `select --executor auto` decides again and keeps its own beside it."""
    write_jsonl(tmp_path / "in" / "a.jsonl", _docs("a", 28))
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({"input": {"paths": [str(tmp_path / "in")]},
                                      "output": {"path": str(out)}}))
    done = subprocess.run([str(SCRIPT), "run", str(config)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "executor auto:" in line]
    assert len(said) == 1 and "executor auto: local (1 split, " in said[0], done.stderr
    stats = json.loads((out / "stats.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert stats["executor"] == "local"
    assert manifest["executor"]["kind"] == "auto" and manifest["executor"]["chosen"] == "local"

    again = CliRunner().invoke(app, ["select", str(out), "--executor", "auto", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["select_executor"] == "local"
    assert json.loads((out / "stats.json").read_text())["executor"] == "local"
