"""CoLoR-Filter's target text (every format, every error naming file, line and key; the corpus
domain hold-out) and the color_score histograms."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import write_jsonl, write_parquet

from siftline.color.target import is_held_out, load_target_texts, target_fingerprint
from siftline.config import InputConfig, S3Config, TargetConfig
from siftline.errors import ConfigError
from siftline.io.storage import Storage
from siftline.lm.data import unit_hash
from siftline.selection.plot import render_histograms

ARC_EASY = Path(__file__).resolve().parents[2] / "shared" / "data" / "targets" / "arc_easy.jsonl"
EVAL = [
    {"query": "Question: What do plants need?", "choices": ["light", "rocks"], "gold": 0},
    {"query": "Question: 2 + 2 =", "choices": ["3", "4", "5"], "gold": 1},
]


def load(corpus: InputConfig | None = None, **target: Any) -> list[str]:
    if "paths" in target:
        target["paths"] = [str(p) for p in target["paths"]]
    return load_target_texts(TargetConfig(**target), corpus or InputConfig(), Storage())


def load_error(path: Path | None = None, **target: Any) -> str:
    paths = [] if path is None else [path]
    with pytest.raises(ConfigError) as info:
        load(paths=target.pop("paths", paths), **target)
    return str(info.value)


# -- formats -----------------------------------------------------------------------------------
def test_eval_records_give_prompt_plus_gold_answer(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "eval.jsonl", [EVAL[0], b"", EVAL[1],
                                                 {**EVAL[1], "gold": "5"}])
    assert load(paths=[path]) == [
        "Question: What do plants need? light",
        "Question: 2 + 2 = 4",
        "Question: 2 + 2 = 5",  # a gold given as the answer itself
    ]


def test_template_and_text_field(tmp_path: Path) -> None:
    records = [{"question": "Why?", "answer": "Because.", "body": {"text": "nested"}}]
    path = write_jsonl(tmp_path / "qa.jsonl.gz", records, compression="gzip")
    assert load(paths=[path], template="Q: {question} A: {answer}") == ["Q: Why? A: Because."]
    assert load(paths=[path], fields={"text": "body.text"}) == ["nested"]
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"text": "one"}, {"text": "  "}, {"text": "2"}])
    assert load(paths=[plain]) == ["one", "2"]  # whitespace-only texts carry nothing


def test_plain_text_paragraphs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("First para\nstill first.\n\n\n  Second.  \r\n\r\nThird\n")
    (tmp_path / "b.md.gz").write_bytes(gzip.compress(b"# Title\n\nBody text.\n", mtime=0))
    assert load(paths=[tmp_path / "a.txt", tmp_path / "b.md.gz"]) == [
        "First para\nstill first.", "Second.", "Third", "# Title", "Body text."]


def test_forced_formats(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "eval.jsonl", EVAL[:1])
    assert load(paths=[path], format="text") == [(tmp_path / "eval.jsonl").read_text().strip()]
    assert load(paths=[path], format="jsonl", template="{query}") == [EVAL[0]["query"]]
    assert load(paths=[path], format="input", fields={"text": "query"}) == [EVAL[0]["query"]]
    other = write_jsonl(tmp_path / "other.jsonl", [{"text": "x"}])
    assert "key 'query'" in load_error(other, format="eval")


def test_parquet_and_folders_through_the_readers(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t" / "b.parquet", [{"content": "from parquet"}, {"content": ""}])
    write_jsonl(tmp_path / "t" / "a.jsonl", [{"content": "from jsonl"}])
    (tmp_path / "t" / "c.txt").write_text("from text\n")
    (tmp_path / "t" / "_SUCCESS").write_text("")
    (tmp_path / "t" / "notes.csv").write_text("ignored")
    texts = load(paths=[tmp_path / "t"], fields={"text": "content"})
    assert texts == ["from jsonl", "from parquet", "from text"]  # sorted, hidden files skipped
    assert load(paths=[tmp_path / "t" / "*.parquet"], fields={"text": "content"}) == [
        "from parquet"]
    assert "no text column 'text'" in load_error(tmp_path / "t" / "b.parquet")


def test_max_bytes_keeps_whole_texts_in_order(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "ééé"}, {"text": "abcd"}, {"text": "x"}])
    assert load(paths=[path], max_bytes=10) == ["ééé", "abcd"]  # 6 + 4 bytes, "x" would be 11
    assert load(paths=[path], max_bytes=9) == ["ééé"]  # stops at the first that does not fit
    assert "smaller than the first target text" in load_error(path, max_bytes=5)


def test_fingerprint_tells_lists_apart() -> None:
    assert target_fingerprint(["ab", "c"]) == target_fingerprint(["ab", "c"])
    assert target_fingerprint(["ab", "c"]) != target_fingerprint(["a", "bc"])
    assert target_fingerprint(["a"]) != target_fingerprint(["a", ""])


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("records", "target", "line", "key", "words"),
    [
        ([EVAL[0], b'{"query": "q", "choices": [', EVAL[1]], {}, 2, None, "invalid JSON"),
        ([EVAL[0], b"", {**EVAL[1], "gold": 3}], {}, 3, "gold", "out of range for 3"),
        ([EVAL[0], {**EVAL[1], "gold": 1.0}], {}, 2, "gold", "expected an int"),
        ([EVAL[0], {**EVAL[1], "gold": True}], {}, 2, "gold", "expected an int"),
        ([EVAL[0], {**EVAL[1], "gold": "7"}], {}, 2, "gold", "neither an index"),
        ([EVAL[0], {"query": "q", "choices": ["a"]}], {}, 2, "gold", "is missing"),
        ([EVAL[0], {**EVAL[1], "choices": "abc"}], {}, 2, "choices", "non-empty list"),
        ([EVAL[0], {**EVAL[1], "query": None}], {}, 2, "query", "expected a string"),
        ([{"text": "a"}, {"body": "b"}], {}, 2, "text", "is missing"),
        ([{"text": "a"}, {"text": 5}], {}, 2, "text", "is int, expected a string"),
        ([{"text": "a"}, {"text": None}], {}, 2, "text", "is null"),
        ([{"text": "a"}, [1, 2]], {}, 2, None, "expected a JSON object"),
        ([{"q": "a"}, {"x": "b"}], {"template": "{q}"}, 2, "q", "target.template uses it"),
        ([b"\xff\xfe"], {}, 1, None, "not valid UTF-8"),
        ([{"text": "a"}, b'{"text": "\\ud800"}'], {}, 2, "text", "unpaired UTF-16 surrogate"),
    ],
)
def test_record_errors_name_file_line_and_key(tmp_path: Path, records: list[Any],
                                              target: dict[str, Any], line: int,
                                              key: str | None, words: str) -> None:
    path = write_jsonl(tmp_path / "target.jsonl", records)
    message = load_error(path, **target)
    assert str(path) in message and f"line {line}" in message and words in message
    assert (f"key {key!r}" in message) if key else "key" not in message


def test_path_and_config_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert str(missing) in load_error(missing)
    assert "matches no file" in load_error(tmp_path / "*.jsonl")
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    assert "no target text" in load_error(tmp_path / "empty.txt")
    assert str(tmp_path / "empty.txt") in load_error(tmp_path / "empty.txt")
    (tmp_path / "data.csv").write_text("a,b\n")
    assert "unknown format" in load_error(tmp_path / "data.csv")
    bad = (tmp_path / "bad.txt")
    bad.write_bytes(b"fine\nalso fine\n\xff\n")
    assert f"{bad}, line 3" in load_error(bad)
    path = write_jsonl(tmp_path / "t.jsonl", [{"a": "x"}])
    assert "named fields" in load_error(path, template="{} {a}")
    assert "target.template" in load_error(path, template="{a")
    assert "not to format text" in load_error(path, format="text", template="{a}")
    parquet = write_parquet(tmp_path / "p.parquet", [{"text": None}])
    assert f"{parquet}, row 0" in load_error(parquet)


# -- a held-out share of a corpus domain ---------------------------------------------------------
def _corpus(tmp_path: Path) -> Path:
    records = [{"id": f"doc{i}", "domain": "books" if i % 3 else "web",
                "text": f"document {i} " + "words " * (i % 7)} for i in range(300)]
    records[1]["text"] = "   "  # an empty book is never target text
    return write_jsonl(tmp_path / "corpus.jsonl", records)


def test_domain_holdout_is_seeded_ordered_and_split_independent(tmp_path: Path) -> None:
    path = _corpus(tmp_path)
    target = TargetConfig(domain="books", holdout_fraction=0.25, seed=3)
    ids = [f"doc{i}" for i in range(300) if i % 3 and i != 1]
    expected = sorted((unit_hash(i, 3, "target"), i) for i in ids)
    expected = [f"document {i[3:]} " + "words " * (int(i[3:]) % 7)
                for h, i in expected if h < 0.25]
    storage = Storage()
    whole = load_target_texts(target, InputConfig(paths=[str(path)]), storage)
    pieces = load_target_texts(target, InputConfig(paths=[str(path)], split_bytes=700), storage)
    assert whole == pieces == expected
    assert 40 < len(whole) < 60  # about a quarter of the 199 books
    assert all(is_held_out(f"doc{i}", "books", target) == (unit_hash(f"doc{i}", 3, "target") < 0.25)
               for i in range(300) if i % 3)
    assert not any(is_held_out(f"doc{i}", "web", target) for i in range(300))
    other_seed = TargetConfig(domain="books", holdout_fraction=0.25, seed=4)
    assert load_target_texts(other_seed, InputConfig(paths=[str(path)]), storage) != whole


def test_domain_holdout_errors_name_the_domains_seen(tmp_path: Path) -> None:
    corpus = InputConfig(paths=[str(_corpus(tmp_path))])
    with pytest.raises(ConfigError, match=r"'news'.*books \(200\), web \(100\)"):
        load(corpus, domain="news")
    doc_id = next(f"id{i}" for i in range(100) if unit_hash(f"id{i}", 0, "target") > 0.5)
    tiny = write_jsonl(tmp_path / "tiny.jsonl", [{"id": doc_id, "domain": "books", "text": "x"}])
    with pytest.raises(ConfigError, match="none of its 1 documents is held out"):
        load(InputConfig(paths=[str(tiny)]), domain="books", holdout_fraction=0.5)


def test_s3_target_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Globs over s3:// come back with their protocol and are read like local files."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    for key in [k for k in os.environ if k.startswith(("AWS_", "BOTO_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Config(endpoint_url=f"http://{host}:{port}", region="us-east-1",
                      access_key_id="AKIDTARGET", secret_access_key="target-secret")
        client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="AKIDTARGET",
                              aws_secret_access_key="target-secret")
        client.create_bucket(Bucket="color-target")
        body = "\n".join(json.dumps(r) for r in EVAL) + "\n"
        client.put_object(Bucket="color-target", Key="evals/b.jsonl", Body=body.encode())
        client.put_object(Bucket="color-target", Key="evals/a.txt", Body=b"Para one.\n\nTwo.")
        target = TargetConfig(paths=["s3://color-target/evals/*"])
        texts = load_target_texts(target, InputConfig(), Storage(s3))
        assert texts == ["Para one.", "Two.", "Question: What do plants need? light",
                         "Question: 2 + 2 = 4"]
    finally:
        server.stop()
        s3fs = pytest.importorskip("s3fs")
        s3fs.S3FileSystem.clear_instance_cache()  # no cached client for a stopped endpoint


# -- real data -----------------------------------------------------------------------------------
@pytest.mark.skipif(not ARC_EASY.exists(), reason="../shared/data is not on this machine")
def test_real_arc_easy_target() -> None:
    texts = load(paths=[ARC_EASY])
    assert len(texts) == 2376
    assert texts[0].startswith("Question: ") and len(set(texts)) > 2300


# -- histograms ----------------------------------------------------------------------------------
def test_render_histograms_is_a_deterministic_png() -> None:
    rng = np.random.default_rng(0)
    scores = {"web": rng.normal(0, 1, 500), "books": rng.normal(1, 1, 300),
              "empty": np.zeros(0)}
    thresholds = {"all": 1.2, "web": 0.8, "books": None}
    first = render_histograms(scores, thresholds, "CoLoR-Filter scores")
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert render_histograms(scores, thresholds, "CoLoR-Filter scores") == first
    assert render_histograms(scores, {}, "no cut") != first
    assert render_histograms({}, {"all": None}, "nothing").startswith(b"\x89PNG")
    given = {"*": np.concatenate([scores["books"], scores["web"]]), **scores}
    star = render_histograms(given, {"*": 1.2, "web": 0.8}, "CoLoR-Filter scores", all_key="*")
    assert star == first  # the all panel given under the caller's key draws the same figure
    constant = render_histograms({"x": np.full(4, 2.0)}, {"all": 2.0}, "flat")
    assert constant.startswith(b"\x89PNG") and b"Software" not in constant
