"""Domain mixture in a real (small, local) run: token counts, weights.json, the weights and mix
commands, mixed shards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers import invoke, read_data, write_jsonl

from siftline.lm.tokenizer import train_tokenizer
from siftline.mixture.weights import temperature_weights

SIZES = {"books": 12, "code": 4, "web": 60}  # documents per domain


def _text(domain: str, i: int) -> str:
    words = {"books": "the old ship sailed into the quiet harbour at dawn",
             "code": "def f(x): return x + 1  # add one",
             "web": "click here to read the latest news about the weather"}[domain]
    return f"{domain} {i}: " + " ".join([words] * (1 + i % 5))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    records = [{"id": f"{d}-{i:03d}", "text": _text(d, i), "domain": d}
               for d, n in SIZES.items() for i in range(n)]
    records += [{"id": f"dup-{i}", "text": _text("web", i), "domain": "web"} for i in range(5)]
    return write_jsonl(tmp_path / "in" / "corpus.jsonl", records)


pytestmark = pytest.mark.usefixtures("wide_console")


def kept_chars(out: Path) -> dict[str, int]:
    data = read_data(out).to_pylist()
    chars: Counter[str] = Counter()
    for row in data:
        chars[row["domain"]] += len(row["text"])
    return dict(chars)


def test_run_writes_weights_json_and_token_counts(run_job, corpus: Path, tmp_path: Path) -> None:
    result = run_job(corpus, mixture__train_tokens=50_000)
    out = tmp_path / "out"
    doc = json.loads((out / "weights.json").read_text())
    chars = kept_chars(out)
    expected = {name: round(n / 4.0) for name, n in sorted(chars.items())}
    assert result.stats["mixture"]["tokens"] == expected
    assert result.stats["mixture"]["counted_with"] == {"method": "chars_per_token",
                                                       "chars_per_token": 4.0}
    assert {n: d["tokens"] for n, d in doc["domains"].items()} == expected
    assert doc["train_tokens"] == 50_000 and doc["train_tokens_from"] == "config"
    assert [(p["start"], p["end"], p["tau"]) for p in doc["phases"]] == [(0.0, 0.5, 5.0),
                                                                         (0.5, 1.0, 1.0)]
    for phase in doc["phases"]:
        assert phase["weights"] == pytest.approx(temperature_weights(expected, phase["tau"]))
        assert sum(phase["domain_tokens"].values()) == phase["tokens"] == 25_000
    assert set(doc["epochs"]) == set(expected) and isinstance(doc["warnings"], list)
    assert doc["epochs"]["code"] > 4 and any(w.startswith("code:") for w in doc["warnings"])
    png = (out / "plots" / "weights.png").read_bytes()
    assert png.startswith(b"\x89PNG") and "weights" in result.stats["wall_time_s"]


def test_run_counts_with_a_tokenizer_without_bos(run_job, corpus: Path, tmp_path: Path) -> None:
    texts = [_text(d, i) for d, n in SIZES.items() for i in range(n)]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    folder = tokenizer.save(tmp_path / "tok").parent
    result = run_job(corpus, mixture__tokenizer=str(folder), mixture__enabled=True)
    out = tmp_path / "out"
    expected: Counter[str] = Counter()
    for row in read_data(out).to_pylist():
        expected[row["domain"]] += len(tokenizer.encode_batch([row["text"]])[0])
    assert result.stats["mixture"]["tokens"] == dict(sorted(expected.items()))
    doc = json.loads((out / "weights.json").read_text())
    assert doc["counted_with"] == {"method": "tokenizer", "tokenizer": str(folder)}
    assert doc["train_tokens_from"] == "kept_tokens"
    assert doc["train_tokens"] == sum(expected.values())


def test_a_bad_tokenizer_fails_before_any_work(run_job, corpus: Path, tmp_path: Path) -> None:
    from siftline.errors import ConfigError

    with pytest.raises(ConfigError, match="mixture.tokenizer"):
        run_job(corpus, mixture__tokenizer=str(tmp_path / "nowhere"))
    assert not (tmp_path / "out" / "data").exists()


def test_mixture_off_writes_no_weights(run_job, corpus: Path, tmp_path: Path) -> None:
    result = run_job(corpus, mixture__enabled=False)
    assert "mixture" not in result.stats and not (tmp_path / "out" / "weights.json").exists()


def test_weights_command_recomputes_with_new_schedule(run_job, corpus: Path,
                                                      tmp_path: Path) -> None:
    run_job(corpus)
    out = tmp_path / "out"
    result = invoke("weights", out, "--schedule", "0:0.25:10,0.25:1:1", "--train-tokens", "1M",
                    "--max-epochs", "2", "--cap", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == json.loads((out / "weights.json").read_text())
    assert [p["tau"] for p in doc["phases"]] == [10.0, 1.0]
    assert [p["tokens"] for p in doc["phases"]] == [250_000, 750_000]
    assert doc["train_tokens"] == 1_000_000 and doc["all_capped"]  # far past 2 epochs of all
    table = invoke("weights", out, "--tau", "3.33", "--train-tokens", "2000")
    assert table.exit_code == 0, table.output
    assert "τ=3.33" in table.output and "domain weights" in table.output
    assert json.loads((out / "weights.json").read_text())["phases"][0]["tau"] == 3.33


@pytest.mark.parametrize(("args", "message"), [
    (["--tau", "2", "--schedule", "0:1:2"], "give --tau or --schedule, not both"),
    (["--schedule", "0:0.5:5,0.6:1:1"], "mixture.schedule"),
    (["--train-tokens", "many"], "mixture.train_tokens"),
    (["--tokenizer", "/nonexistent/tok"], "mixture.tokenizer"),
])
def test_weights_command_rejects_bad_options(run_job, corpus: Path, tmp_path: Path,
                                             args: list[str], message: str) -> None:
    run_job(corpus)
    result = invoke("weights", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output


def test_weights_command_needs_a_finished_run(tmp_path: Path) -> None:
    result = invoke("weights", tmp_path / "nothing")
    assert result.exit_code == 2 and "no manifest.json" in result.output


def _mix_rows(out: Path, phase: int) -> list[dict[str, Any]]:
    files = sorted((out / "mix" / f"phase-{phase}").glob("part-*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_mix_shards_follow_the_phase_weights(run_job, corpus: Path, tmp_path: Path) -> None:
    run_job(corpus, mixture__train_tokens=40_000)
    out = tmp_path / "out"
    result = invoke("mix", out, "--json", "--shard-bytes", "20KB")
    assert result.exit_code == 0, result.output
    manifests = json.loads(result.stdout)
    doc = json.loads((out / "weights.json").read_text())
    assert [m["phase"] for m in manifests] == [0, 1]
    longest = max(len(t) for t in read_data(out).column("text").to_pylist()) / 4.0
    for manifest, phase in zip(manifests, doc["phases"], strict=True):
        rows = _mix_rows(out, phase["index"])
        assert len(manifest["files"]) > 1 and manifest["rows"] == len(rows)
        drawn: Counter[str] = Counter()
        for row in rows:
            drawn[row["domain"]] += len(row["text"]) / 4.0
        for name, target in phase["domain_tokens"].items():
            # each domain ends within half a document of its target
            assert abs(drawn[name] - target) <= longest / 2
            assert manifest["domains"][name]["tokens"] == round(drawn[name])
            share = drawn[name] / sum(drawn.values())
            assert share == pytest.approx(phase["weights"][name], abs=0.02)
        assert max(r["repeat"] for r in rows if r["domain"] == "code") >= 1  # upsampled
        saved = json.loads((out / "mix" / f"phase-{phase['index']}" / "manifest.json")
                           .read_text())
        assert saved == manifest


def test_mix_is_deterministic_for_a_seed(run_job, corpus: Path, tmp_path: Path) -> None:
    run_job(corpus, mixture__train_tokens=20_000)
    out = tmp_path / "out"

    def phase_bytes() -> dict[str, bytes]:
        folder = out / "mix" / "phase-1"
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    assert invoke("mix", out, "--phase", 1, "--quiet").exit_code == 0
    first = phase_bytes()
    assert not (out / "mix" / "phase-0").exists()
    assert invoke("mix", out, "--phase", 1, "--seed", 7, "--quiet").exit_code == 0
    other = phase_bytes()
    assert invoke("mix", out, "--phase", 1, "--quiet").exit_code == 0
    assert phase_bytes() == first and other != first
    ids = [r["id"] for r in _mix_rows(out, 1)]
    assert ids != sorted(ids)  # domains are interleaved, not concatenated


def test_mix_tokens_option_and_table(run_job, corpus: Path, tmp_path: Path) -> None:
    run_job(corpus)
    out = tmp_path / "out"
    result = invoke("mix", out, "--phase", 0, "--tokens", "3000")
    assert result.exit_code == 0, result.output
    assert "mix/phase-0" in result.output and "books" in result.output
    manifest = json.loads((out / "mix" / "phase-0" / "manifest.json").read_text())
    assert manifest["target_tokens"] == 3000
    assert invoke("mix", out, "--phase", 5).exit_code == 2


def test_select_rewrites_weights_and_drops_stale_mix(run_job, corpus: Path,
                                                     tmp_path: Path) -> None:
    run_job(corpus)
    out = tmp_path / "out"
    assert invoke("mix", out, "--phase", 0, "--quiet").exit_code == 0
    before = json.loads((out / "weights.json").read_text())
    result = invoke("select", out, "--stages", "", "--json")  # keep the duplicates too
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    after = json.loads((out / "weights.json").read_text())
    assert stats["mixture"]["tokens"] == {n: d["tokens"] for n, d in after["domains"].items()}
    assert after["total_tokens"] > before["total_tokens"]  # the 5 duplicates are back
    assert not (out / "mix").exists()


def test_run_command_prints_the_weights_table(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(json.dumps({"input": {"paths": [str(corpus)]},
                                  "output": {"path": str(tmp_path / "out")},
                                  "executor": {"kind": "local"},
                                  "mixture": {"schedule": "0:0.2:10,0.2:1:1",
                                              "max_epochs": 1}}))
    result = invoke("run", config)
    assert result.exit_code == 0, result.output
    assert "domain weights" in result.output and "0-0.2 τ=10" in result.output
    assert "warning: code: repeated" in result.output


def test_token_counts_are_recorded_per_shard_and_reused(tmp_path: Path, corpus: Path,
                                                        run_job) -> None:
    from siftline.io.storage import Storage
    from siftline.mixture.tokens import TokenCounter, count_shard

    run_job(corpus)
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    shard = manifest["outputs"]["data"][0]
    texts = [_text(d, i) for d, n in SIZES.items() for i in range(n)]
    tok_json = train_tokenizer(texts, vocab_size=300).save(tmp_path / "tok")
    counter = TokenCounter.build(str(tok_json), 4.0)  # a tokenizer.json file, not a folder
    storage, work = Storage(), str(tmp_path / "work")
    first = count_shard(counter, storage, str(out), work, shard)
    assert (tmp_path / "work" / "tokens" / f"{shard['sha256']}.json").is_file()
    (out / shard["path"]).write_bytes(b"not parquet any more")
    assert count_shard(counter, storage, str(out), work, shard) == first  # not re-read
    assert sum(first.values()) > 0 and set(first) <= set(SIZES)


def test_validate_checks_the_tokenizer(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(json.dumps({"input": {"paths": [str(corpus)]},
                                  "output": {"path": str(tmp_path / "out")},
                                  "mixture": {"tokenizer": str(tmp_path / "missing")}}))
    result = invoke("validate", config)
    assert result.exit_code == 2 and "mixture.tokenizer" in result.output
    assert not (tmp_path / "out").exists()
