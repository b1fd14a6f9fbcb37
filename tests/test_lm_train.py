"""`siftline train-lm` and `siftline.lm.train`: sampling, packing, the loop, resume, fine-tune, CLI.

Every model here is a ~35k-parameter GPT trained for a few dozen steps on synthetic sentences
this file builds, on one CPU thread (a shared 2-core machine runs one thread much faster).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from helpers import write_jsonl, write_parquet
from typer.testing import CliRunner

import siftline.cli.main as cli
from siftline.config import TrainJobConfig, load_config
from siftline.errors import ConfigError
from siftline.lm.checkpoint import load_causal_lm, load_lm, read_model_config
from siftline.lm.config import ModelConfig, TrainConfig
from siftline.lm.data import (
    BatchOrder,
    BottomSample,
    Document,
    Windows,
    sample_corpus,
    sample_documents,
    split_holdout,
)
from siftline.lm.loop import StepInfo, TrainProgress, evaluate, lr_at
from siftline.lm.train import resolve_model, train_lm, train_lm_on_texts
from siftline.lm.train_state import RunFolder

MODEL: dict[str, Any] = {"preset": "tiny", "vocab_size": 300, "d_model": 32, "n_heads": 2,
                         "context_length": 32}
TRAIN: dict[str, Any] = {"tokens": 30 * 8 * 32, "batch_size": 8, "lr": 3e-3, "eval_every": 10,
                         "checkpoint_every": 10, "val_fraction": 0.1, "device": "cpu",
                         "threads": 1}
WORDS = {"animals": ("cat dog bird fish horse cow sheep goat", "sees chases likes bites hears",
                     "big small red quick lazy old young"),
         "machines": ("robot engine pump valve crane drill", "builds moves lifts turns starts",
                      "steel heavy fast broken new")}


def synthetic_texts(n: int, seed: int = 0, topic: str = "animals") -> list[str]:
    nouns, verbs, adjs = (w.split() for w in WORDS[topic])
    rng = random.Random(seed)

    def sentence() -> str:
        return (f"the {rng.choice(adjs)} {rng.choice(nouns)} {rng.choice(verbs)} "
                f"the {rng.choice(nouns)}.")

    return [" ".join(sentence() for _ in range(rng.randint(2, 5))) for _ in range(n)]


def model_cfg(**kw: Any) -> ModelConfig:
    return ModelConfig(**{**MODEL, **kw})


def train_cfg(**kw: Any) -> TrainConfig:
    return TrainConfig(**{**TRAIN, **kw})


class Stop(Exception):
    """Stands in for a kill."""


class StopAt(TrainProgress):
    def __init__(self, step: int) -> None:
        self.at = step

    def step(self, info: StepInfo) -> None:
        if info.step == self.at:
            raise Stop


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_causal_lm(folder).state_dict()


def log_rows(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "train_log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"} for line in lines]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One straight 30-step run, shared: the reference weights, the init for fine-tuning."""
    out = tmp_path_factory.mktemp("lm") / "prior"
    return out, train_lm_on_texts(synthetic_texts(150), model_cfg(), train_cfg(), out)


# -- the loop ----------------------------------------------------------------------------------
def test_training_lowers_validation_loss(trained: tuple[Path, Any]) -> None:
    out, result = trained
    assert result.status == "complete" and result.steps == 30 and result.tokens == 30 * 8 * 32
    assert result.val_loss_before == pytest.approx(math.log(300), abs=0.1)  # a fresh model
    assert result.val_loss_after < result.val_loss_before - 1.5
    assert result.data["documents_val"] > 0 and result.data["documents_train"] > 0
    saved = json.loads((out / "train_result.json").read_text())
    assert saved == {**result.to_dict(), "status": "complete"}
    assert not (out / "_work").exists()
    meta = json.loads((out / "siftline_lm.json").read_text())
    assert meta["train"]["config_sha256"] == result.config_sha256
    rows = log_rows(out)
    assert [r["step"] for r in rows] == list(range(31))
    assert [r["step"] for r in rows if r["val_loss"] is not None] == [0, 10, 20, 30]
    assert rows[-1]["val_loss"] == pytest.approx(result.val_loss_after)
    assert rows[1]["lr"] < rows[3]["lr"] and rows[-1]["lr"] < rows[3]["lr"]  # warmup, decay
    lm = load_lm(out, device="cpu")  # the scorer's loader reads the final folder
    assert lm.tokenizer.bos_id is not None and lm.context_length == 32


def test_resume_after_kill_reaches_identical_weights(trained: tuple[Path, Any],
                                                     tmp_path: Path) -> None:
    reference, straight = trained
    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        train_lm_on_texts(synthetic_texts(150), model_cfg(), train_cfg(), out,
                          progress=StopAt(15))
    assert [step for _, step in RunFolder(out, "").checkpoints()] == [10]
    partial = out / "_work" / "ckpt-00000020.0123.tmp"  # a kill during the next write
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half a file")
    result = train_lm_on_texts(synthetic_texts(150), model_cfg(), train_cfg(), out)
    assert result.resumed_from == 10 and result.status == "complete"
    mine, theirs = weights(out), weights(reference)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert log_rows(out) == log_rows(reference)  # no step logged twice, same losses
    assert result.val_loss_after == straight.val_loss_after


def test_rerun_is_a_noop_and_another_config_needs_overwrite(trained: tuple[Path, Any],
                                                            tmp_path: Path) -> None:
    source, first = trained
    out = tmp_path / "copy"
    shutil.copytree(source, out)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    again = train_lm_on_texts(synthetic_texts(150), model_cfg(), train_cfg(threads=2), out)
    assert again.status == "already_complete"
    assert again.to_dict() == {**first.to_dict(), "status": "already_complete"}
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="different config"):
        train_lm_on_texts(synthetic_texts(150), model_cfg(), train_cfg(lr=1e-3), out)
    with pytest.raises(ConfigError, match="different config"):  # other texts, other model
        train_lm_on_texts(synthetic_texts(151), model_cfg(), train_cfg(), out)
    redone = train_lm_on_texts(synthetic_texts(150), model_cfg(), train_cfg(tokens=2560), out,
                               overwrite=True)
    assert redone.status == "complete" and redone.steps == 10


def test_finetune_starts_from_init_with_a_fresh_optimizer(trained: tuple[Path, Any],
                                                          tmp_path: Path) -> None:
    init, _ = trained
    out = tmp_path / "cond"
    target = synthetic_texts(60, seed=1, topic="machines")
    cfg = train_cfg(epochs=1.0, checkpoint_every=2, lr=1e-3)
    with pytest.raises(Stop):
        train_lm_on_texts(target, None, cfg, out, init=init, progress=StopAt(3))
    folder = RunFolder(out, "")
    ckpt, step = folder.checkpoints()[-1]
    assert step == 2
    state = torch.load(ckpt / "state.pt", weights_only=True)
    assert {float(s["step"]) for s in state["optimizer"]["state"].values()} == {2.0}  # reset
    tokenizer, _, val, _ = folder.load_data()
    assert (ckpt / "tokenizer.json").read_bytes() == (init / "tokenizer.json").read_bytes()
    batches = Windows(val, 32).eval_batches(cfg.batch_size, cfg.eval_tokens)
    assert state["val_loss_before"] == evaluate(load_causal_lm(init), batches,
                                                torch.device("cpu"))  # init's weights
    result = train_lm_on_texts(target, None, cfg, out, init=init)
    assert result.init == str(init) and result.resumed_from == 2
    assert result.steps == math.ceil((result.data["train_tokens"] - 1) // 32 / cfg.batch_size)
    assert result.val_loss_after < result.val_loss_before
    assert (out / "tokenizer.json").read_bytes() == (init / "tokenizer.json").read_bytes()
    assert read_model_config(out) == read_model_config(init)
    with pytest.raises(ConfigError, match="d_model differ"):
        train_lm_on_texts(target, model_cfg(d_model=64), cfg, tmp_path / "x", init=init)


def test_job_model_keys_must_agree_with_init(trained: tuple[Path, Any]) -> None:
    init, _ = trained
    agree = load_config({"init": str(init), "model": {"d_model": 32}}, model=TrainJobConfig)
    assert resolve_model(agree)[0] == read_model_config(init)
    clash = load_config({"init": str(init), "model": {"preset": "tiny"}}, model=TrainJobConfig)
    with pytest.raises(ConfigError, match=r"model\.(context_length|d_model|n_heads|vocab_size)"):
        resolve_model(clash)
    missing = load_config({"init": "/nonexistent/model"}, model=TrainJobConfig)
    with pytest.raises(ConfigError, match="init: /nonexistent/model is not a siftline model"):
        resolve_model(missing)


# -- config errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "fragments"), [
    ({"train": {"lr": 0}}, ["train.lr"]),
    ({"sample": {"max_byte": 5}}, ["sample.max_byte: unknown key"]),
    ({"trian": {}}, ["trian: unknown key"]),
    ({"output": {"path": "s3://bucket/model"}}, ["output.path", "local path"]),
    ({"model": {"d_model": 30, "n_heads": 4}}, ["model", "not divisible"]),
    ({"sample": {"max_bytes": "lots"}}, ["sample.max_bytes"]),
])
def test_config_errors_name_the_key(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(data, model=TrainJobConfig)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_too_little_text_and_overlapping_output_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.context_length"):
        train_lm_on_texts(["a short text.", "another one."], model_cfg(), train_cfg(),
                          tmp_path / "small")
    job = load_config({"input": {"paths": [str(tmp_path)]},
                       "output": {"path": str(tmp_path / "model")}}, model=TrainJobConfig)
    with pytest.raises(ConfigError, match="overlaps input"):
        train_lm(job)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="did not write"):
        train_lm_on_texts(synthetic_texts(10), model_cfg(), train_cfg(), foreign)


# -- sampling and packing ----------------------------------------------------------------------
def test_sample_is_order_independent_bounded_and_maximal() -> None:
    docs = [Document(f"d{i}", "x" * (10 + i % 7)) for i in range(300)]
    docs += [Document("d5", "a repeated id")]
    picks = []
    for seed in range(3):
        shuffled = docs[:]
        random.Random(seed).shuffle(shuffled)
        picks.append(sample_documents(shuffled, 1000, seed=7))
    assert picks[0] == picks[1] == picks[2]
    kept = picks[0]
    size = sum(len(d.text) for d in kept)
    assert 900 < size <= 1000
    sampler = BottomSample(None, seed=7)
    for doc in docs:
        sampler.add(doc.id, doc.text)
    everything = sampler.documents()
    assert everything[:len(kept)] == kept  # a prefix of the seeded hash order
    assert [d.id for d in kept].count("d5") in (0, 2)  # equal ids enter and leave together


def test_corpus_sample_is_the_same_from_jsonl_and_parquet(tmp_path: Path) -> None:
    records = [{"id": f"r{i}", "text": t} for i, t in enumerate(synthetic_texts(200))]
    records[3]["text"] = "   "  # empty: skipped, as selection drops it
    write_jsonl(tmp_path / "jsonl" / "a.jsonl", [*records[:100], b"{broken"])
    write_jsonl(tmp_path / "jsonl" / "b.jsonl", records[100:])
    write_parquet(tmp_path / "parquet" / "all.parquet", records, row_group_size=30)
    samples = []
    for folder, bad in (("jsonl", 1), ("parquet", 0)):
        cfg = load_config({"input": {"paths": [str(tmp_path / folder)], "split_bytes": 4000},
                           "sample": {"max_bytes": 8000}}, model=TrainJobConfig)
        docs, stats = sample_corpus(cfg.input, cfg.storage, cfg.sample)
        samples.append(docs)
        assert stats.read == 199 and stats.empty == 1 and stats.quarantined == bad
        assert stats.sampled == len(docs)
        assert 7000 < stats.sampled_bytes <= 8000
    assert samples[0] == samples[1] and len(samples[0]) < 199
    cfg = load_config({"input": {"paths": [str(tmp_path / "parquet")], "split_bytes": 4000},
                       "sample": {"max_bytes": None, "scan_bytes": 3000}}, model=TrainJobConfig)
    docs, stats = sample_corpus(cfg.input, cfg.storage, cfg.sample)
    assert stats.read == len(docs) < 100  # stopped reading after ~3 KB (a split at a time)


def test_holdout_is_stable_per_document() -> None:
    docs = [Document(f"doc{i}", f"text {i}") for i in range(400)]
    train, val = split_holdout(docs, 0.1, seed=0)
    assert 20 < len(val) < 60 and len(train) + len(val) == 400
    _, val_subset = split_holdout(docs[::3], 0.1, seed=0)
    assert {d.id for d in val_subset} == {d.id for d in val} & {d.id for d in docs[::3]}
    tiny_train, tiny_val = split_holdout(docs[:2], 0.01, seed=0)
    assert len(tiny_train) == len(tiny_val) == 1


def test_windows_cover_each_target_once_and_order_is_seeded() -> None:
    stream = np.arange(1, 42, dtype=np.int32)  # 41 tokens, 40 targets
    windows = Windows(stream, 8)
    assert len(windows) == 5
    batch = windows.batch([0, 4])
    assert batch.shape == (2, 9) and batch[1, 0] == 33 and batch[1, -1] == 41
    evals = Windows(stream[:38], 8).eval_batches(batch_size=3, max_tokens=None)
    targets = torch.cat([b[:, 1:].reshape(-1) for b in evals])
    assert sorted(targets.tolist()) == list(range(2, 39))
    order = BatchOrder(5, 2, seed=3)
    seen = [i for step in range(5) for i in order.indices(step)]  # two epochs
    assert sorted(seen[:5]) == sorted(seen[5:]) == list(range(5))
    assert seen == [i for step in range(5) for i in BatchOrder(5, 2, seed=3).indices(step)]


def test_lr_warms_up_then_decays_to_the_floor() -> None:
    cfg = train_cfg(lr=1.0, warmup_fraction=0.1, min_lr_ratio=0.1)
    lrs = [lr_at(step, 100, cfg) for step in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_train_lm_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.err, "width", 400)
    corpus = write_jsonl(tmp_path / "in" / "corpus.jsonl",
                         [{"id": f"r{i}", "text": t} for i, t in enumerate(synthetic_texts(120))])
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({"model": MODEL, "train": {**TRAIN, "tokens": 20 * 256}}))
    out = tmp_path / "model"
    runner = CliRunner()
    args = ["train-lm", str(config), "--input", str(corpus), "--output", str(out)]
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    assert "val loss after" in first.stderr and "(complete)" in first.stderr
    assert load_lm(out, device="cpu").context_length == 32
    again = runner.invoke(cli.app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    payload = json.loads(again.stdout)
    assert payload["status"] == "already_complete" and payload["steps"] == 20
    assert payload["data"]["read"] == 120 and payload["data"]["sampled"] == 120
    changed = runner.invoke(cli.app, [*args, "--set", "train.lr=0.01", "--quiet"])
    assert changed.exit_code == 2 and "--overwrite" in changed.stderr
    bad = runner.invoke(cli.app, [*args, "--set", "train.bogus=1"])
    assert bad.exit_code == 2 and "train.bogus: unknown key" in bad.stderr
    tune = ["train-lm", str(config), "--input", str(corpus), "--init", str(out), "--output",
            str(tmp_path / "tuned"), "--set", "train.tokens=512"]
    clash = runner.invoke(cli.app, [*tune, "--set", "model.d_model=64"])
    assert clash.exit_code == 2 and "model.d_model: 64 conflicts" in clash.stderr
    tuned = runner.invoke(cli.app, [*tune, "--json"])  # the config's model keys agree with init
    assert tuned.exit_code == 0, tuned.output
    assert json.loads(tuned.stdout)["init"] == str(out)


# -- on a GPU ----------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_with_bf16_autocast(trained: tuple[Path, Any], tmp_path: Path) -> None:
    """The GPU path (bf16 autocast, fused AdamW) learns as the CPU one does and resumes."""
    _, on_cpu = trained
    out = tmp_path / "gpu"
    cfg = train_cfg(device="cuda")
    with pytest.raises(Stop):
        train_lm_on_texts(synthetic_texts(150), model_cfg(), cfg, out, progress=StopAt(15))
    result = train_lm_on_texts(synthetic_texts(150), model_cfg(), cfg, out)
    assert result.status == "complete" and result.steps == 30
    assert result.val_loss_after < result.val_loss_before - 1.5
    assert result.val_loss_after == pytest.approx(on_cpu.val_loss_after, abs=0.3)
    assert load_lm(out, device="cuda").device.type == "cuda"
