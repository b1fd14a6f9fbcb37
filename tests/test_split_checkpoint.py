"""Batch checkpoints within a split: a scoring worker lost in the middle of a split resumes it
from the batches it had scored, and the job still ends with the bytes of an undisturbed run.

The corpus is one small JSON Lines file (one split) read in ~2 KB batches and scored by
CoLoR-Filter with two tiny, randomly initialised LMs (no training: the scores differ per
document all the same). A kill comes either from tests/crash_run.py (the job's process
SIGKILLs itself right after the Nth checkpoint lands) or, on Ray, from tests/ray_worker_faults.py
(the worker actor exits after its Nth checkpoint and Ray restarts it).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers import tree_bytes, without_measurements, write_jsonl

from siftline.config import load_config
from siftline.io import inputs, readers
from siftline.io.storage import Storage
from siftline.job.runner import run
from siftline.job.split_checkpoint import wants_checkpoints
from siftline.layout import Layout
from siftline.stages.chain import build_stages
from siftline.stages.color_filter import ColorScore

TESTS = Path(__file__).resolve().parent
CRASH_RUN = TESTS / "crash_run.py"
BATCH_BYTES = 2000
KILL_AFTER = 3  # checkpoints persisted before the kill
WORDS = ["alpha", "beta", "gamma", "delta", "red", "green", "blue", "yellow", "one", "two"]


@dataclass
class Observed:
    """What an in-process run scored, and the staged file it wrote for split 0."""

    batches: int = 0
    rows: int = 0
    staged: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    import torch

    from siftline.lm.checkpoint import save_model
    from siftline.lm.config import ModelConfig
    from siftline.lm.model import CausalLM
    from siftline.lm.tokenizer import train_tokenizer

    folder = tmp_path_factory.mktemp("models")
    tokenizer = train_tokenizer([" ".join(WORDS)] * 20, vocab_size=280)
    paths = []
    for seed, name in enumerate(("prior", "conditional")):
        torch.manual_seed(seed)
        model = CausalLM(ModelConfig(vocab_size=300, d_model=16, n_layers=1, n_heads=2,
                                     context_length=32))
        paths.append(str(save_model(folder / name, model, tokenizer)))
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~60 documents (~15 KB of text, so 7-8 batches) and one line to quarantine."""
    rng = random.Random(7)
    lines: list[dict[str, Any] | bytes] = [
        {"id": f"d{i:03d}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))}
        for i in range(60)
    ]
    lines.insert(25, b'{"id": "broken", "text": ')
    return write_jsonl(tmp_path_factory.mktemp("in") / "corpus.jsonl", lines)


def _config(corpus: Path, models: tuple[str, str], output: str = "out",
            executor: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "input": {"paths": [str(corpus)], "batch_bytes": BATCH_BYTES},
        "output": {"path": output},
        "executor": executor or {"kind": "local"},
        "stages": {"color_filter": {"enabled": True, "prior": models[0],
                                    "conditional": models[1], "tau": 4,
                                    "score": {"device": "cpu", "threads": 1}, "plot": False}},
    }


def _observed_run(case: Path, config: dict[str, Any]) -> Observed:
    """Run the job in-process from `case`, counting the batches color_filter scores."""
    seen = Observed()
    score, stream = ColorScore.__call__, Storage.write_stream
    staged = Layout.for_output(config["output"]["path"]).stage(0)

    def counted(self: ColorScore, table: Any) -> pa.Table:
        out = score(self, table)
        if out.num_rows:
            seen.batches, seen.rows = seen.batches + 1, seen.rows + out.num_rows
        return out

    def recorded(self: Storage, uri: str, produce: Any, durable: bool = True) -> None:
        stream(self, uri, produce, durable)
        if uri == staged:
            seen.staged.append(Path(uri).read_bytes())

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(case)
        patch.setattr(ColorScore, "__call__", counted)
        patch.setattr(Storage, "write_stream", recorded)
        assert run(load_config(config)).status == "complete"
    return seen


def _outputs(out: Path) -> dict[str, bytes]:
    files = tree_bytes(out)
    files["manifest.json"] = (out / "manifest.json").read_bytes()
    stats = without_measurements(json.loads((out / "stats.json").read_text()))
    files["stats.json"] = json.dumps(stats, sort_keys=True).encode()
    return files


def _batches(corpus: Path, fast: bool, patch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids of each batch `read_split` yields for the corpus's one split."""
    config = load_config(_config(corpus, ("p", "c"))).input
    patch.setattr(readers, "JSONL_FAST", fast)
    storage = Storage()
    (split,) = inputs.plan_splits(config, storage, [str(corpus)])
    return [b.table.column("id").to_pylist() for b in readers.read_split(split, config, storage)]


def test_batches_are_cut_the_same_way_every_time(corpus: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What resuming from checkpoints relies on: the block reader cuts a batch after the row
    that reaches `input.batch_bytes`, inside a block too, as the line reader does."""
    fast = _batches(corpus, True, monkeypatch)
    assert len(fast) >= KILL_AFTER + 3
    assert fast == _batches(corpus, True, monkeypatch) == _batches(corpus, False, monkeypatch)
    texts = {json.loads(line)["id"]: json.loads(line)["text"]
             for line in corpus.read_text().splitlines() if line.endswith("}")}
    for ids in fast[:-1]:
        sizes = [len(texts[i]) for i in ids]
        assert sum(sizes[:-1]) < BATCH_BYTES <= sum(sizes)


def test_only_model_stages_ask_for_checkpoints(tmp_path: Path, models: tuple[str, str],
                                               corpus: Path) -> None:
    cheap = load_config({"stages": {"near_dedupe": {"enabled": True}}})
    assert not wants_checkpoints(build_stages(cheap))
    assert wants_checkpoints(build_stages(load_config(_config(corpus, models))))
    case = tmp_path / "cheap"
    case.mkdir()
    writes: list[str] = []
    write = Storage.write_stream  # every file write goes through it

    def recorded(self: Storage, uri: str, produce: Any, durable: bool = True) -> None:
        writes.append(uri)
        write(self, uri, produce, durable)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Storage, "write_stream", recorded)
        config = _config(corpus, models)
        config["stages"] = {"near_dedupe": {"enabled": True}}
        patch.chdir(case)
        run(load_config(config))
    partial = Layout.for_output("out").partial(0)
    assert writes and not [uri for uri in writes if uri.startswith(partial)]


def test_sigkill_mid_split_resumes_from_its_scored_batches(
    tmp_path: Path, models: tuple[str, str], corpus: Path
) -> None:
    config = _config(corpus, models)
    reference = tmp_path / "reference"
    reference.mkdir()
    whole = _observed_run(reference, config)
    assert whole.batches >= KILL_AFTER + 3 and len(whole.staged) == 1

    case = tmp_path / "killed"
    case.mkdir()
    die_at = f"after:*_work/partial/*:{KILL_AFTER}"
    with open(case / "child.log", "wb") as log:
        child = subprocess.run([sys.executable, str(CRASH_RUN), json.dumps(config), die_at],
                               cwd=case, stdout=log, stderr=subprocess.STDOUT, timeout=120)
    assert child.returncode == -signal.SIGKILL, (case / "child.log").read_text()[-2000:]
    layout = Layout.for_output(str(case / "out"))
    persisted = sorted(Path(layout.partial(0)).iterdir())
    assert [p.name for p in persisted] == [Path(layout.partial(0, i)).name
                                           for i in range(KILL_AFTER)]
    assert not Path(layout.stage(0)).exists()  # killed mid-split

    resumed = _observed_run(case, config)
    assert resumed.batches == whole.batches - KILL_AFTER  # the persisted ones are not rescored
    persisted_rows = whole.rows - resumed.rows
    assert 0 < persisted_rows < whole.rows
    assert resumed.staged == whole.staged  # the staged file, byte for byte
    assert _outputs(case / "out") == _outputs(reference / "out")
    assert not (case / "out" / "_work").exists()


@pytest.mark.slow  # ~20 s on two cores: an embedded Ray, a worker started twice
def test_ray_worker_lost_mid_split_is_restarted_and_resumes(
    tmp_path: Path, models: tuple[str, str], corpus: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest
) -> None:
    ray = pytest.importorskip("ray")
    reference = tmp_path / "reference"
    reference.mkdir()
    whole = _observed_run(reference, _config(corpus, models))

    ray_tmp = tempfile.mkdtemp(prefix="siftline-ray-")  # private: no other ray.init finds it
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    for name, value in (("RAY_TMPDIR", ray_tmp), ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"),
                        ("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
        monkeypatch.setenv(name, value)
    log, marker = tmp_path / "scored.log", tmp_path / "died"
    faults = {"log": str(log), "marker": str(marker), "die_after": KILL_AFTER}
    pythonpath = str(TESTS)
    ray.init(address="local", num_cpus=1, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="WARNING", runtime_env={
                 "env_vars": {"PYTHONPATH": pythonpath,
                              "SIFTLINE_TEST_WORKER_FAULTS": json.dumps(faults)},
                 "worker_process_setup_hook": "ray_worker_faults.install"})
    request.addfinalizer(ray.shutdown)
    out = tmp_path / "ray" / "out"
    assert run(load_config(_config(corpus, models, str(out), {"kind": "ray",
                                                               "num_workers": 1}))).status \
        == "complete"

    assert marker.exists(), "the worker never died"
    calls = [line.split() for line in log.read_text().splitlines()]
    by_pid: dict[str, list[int]] = {}
    for pid, rows in calls:
        by_pid.setdefault(pid, []).append(int(rows))
    first, restarted = by_pid.values()  # the lost worker, then the one Ray started in its place
    assert len(first) == KILL_AFTER
    assert len(restarted) == whole.batches - KILL_AFTER
    assert sum(first) + sum(restarted) == whole.rows  # every row scored exactly once
    assert tree_bytes(out) == tree_bytes(reference / "out")
    assert not (out / "_work").exists()
