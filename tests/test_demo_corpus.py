"""The stdlib demo corpus: record shape, domains, size cap, caching and byte-level determinism."""

from __future__ import annotations

import itertools
import json
import pathlib

import pytest
import zstandard

from siftline.demo import build_demo_corpus
from siftline.demo import corpus as demo

MAX_BYTES = 300_000
SHARD_BYTES = 100_000


def read_records(shards: list[pathlib.Path]) -> list[dict]:
    records = []
    for shard in shards:
        data = zstandard.ZstdDecompressor().decompress(shard.read_bytes()).decode("utf-8")
        records += [json.loads(line) for line in data.splitlines()]
    return records


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[pathlib.Path]]:
    dest = tmp_path_factory.mktemp("demo") / "slice"
    return dest, build_demo_corpus(dest, max_bytes=MAX_BYTES, shard_bytes=SHARD_BYTES)


def test_slice_has_all_domains_and_valid_records(built) -> None:
    dest, shards = built
    assert len(shards) > 1
    assert shards == sorted(shards)
    assert [p.name for p in shards][0] == "demo-00000.jsonl.zst"
    records = read_records(shards)
    for record in records:
        assert set(record) == {"id", "text", "domain"}
        assert all(isinstance(record[k], str) for k in record)
        assert record["id"].startswith(record["domain"] + "/")
    assert {r["domain"] for r in records} == {"code", "tests", "docs"}
    assert len({r["id"] for r in records}) == len(records)
    text_bytes = sum(len(r["text"].encode("utf-8")) for r in records)
    assert MAX_BYTES * 0.5 < text_bytes <= MAX_BYTES
    marker = json.loads((dest / demo.MARKER).read_text())
    assert marker["max_bytes"] == MAX_BYTES and marker["text_bytes"] == text_bytes
    assert sum(marker["records"].values()) == len(records)


def test_second_call_uses_cache(built) -> None:
    dest, shards = built
    marker = dest / demo.MARKER
    before = marker.stat().st_mtime_ns
    assert build_demo_corpus(dest, max_bytes=MAX_BYTES, shard_bytes=SHARD_BYTES) == shards
    assert marker.stat().st_mtime_ns == before


def test_rebuild_is_byte_identical(built, tmp_path: pathlib.Path) -> None:
    _, shards = built
    again = build_demo_corpus(tmp_path / "again", max_bytes=MAX_BYTES, shard_bytes=SHARD_BYTES)
    assert [p.name for p in again] == [p.name for p in shards]
    for a, b in zip(shards, again, strict=True):
        assert a.read_bytes() == b.read_bytes()


def fake_records(root: pathlib.Path) -> list[dict[str, str]]:
    return [
        {"id": f"code/m.py#{i:04d}", "text": "x = 1\n" * 50, "domain": "code"} for i in range(40)
    ]


def test_changed_parameters_rebuild_in_place(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "collect_records", fake_records)
    dest = tmp_path / "corpus"
    first = build_demo_corpus(dest, max_bytes=5_000, shard_bytes=1_000)
    second = build_demo_corpus(dest, max_bytes=5_000, shard_bytes=100_000)
    assert len(first) > len(second) == 1
    assert sorted(dest.glob("demo-*.jsonl.zst")) == second
    assert json.loads((dest / demo.MARKER).read_text())["shard_bytes"] == 100_000
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # no temp folders left behind


def test_refuses_to_replace_foreign_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "collect_records", fake_records)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_demo_corpus(tmp_path, max_bytes=5_000)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_chunks_rebuild_the_file_and_respect_the_size_cap() -> None:
    text = (pathlib.Path(demo.sysconfig.get_paths()["stdlib"]) / "argparse.py").read_text()
    chunks = demo.chunk_source(text)
    assert "".join(chunks) == text
    assert len(chunks) > 5
    for chunk in chunks:
        size = len(chunk.encode("utf-8"))
        assert size <= demo.MAX_CHUNK or chunk.count("\n") <= 1
    for small, following in itertools.pairwise(chunks):
        if len(small.encode("utf-8")) < demo.SOFT_CHUNK:  # cut early: only at a top-level def
            assert following.startswith(("def ", "class ", "@")), following[:80]


def test_module_docs_use_qualified_names() -> None:
    source = '"""Module doc."""\nclass A:\n    """Class doc."""\n    def f(self):\n'
    source += f'        """{"Method doc. " * 20}"""\n'
    doc = demo.module_docs(source, "pkg.mod")
    assert doc is not None
    assert doc.startswith("pkg.mod\nModule doc.\n\nA\nClass doc.\n\nA.f\nMethod doc.")
    assert demo.module_docs('"""Too short."""\n', "pkg.mod") is None


def test_cache_paths(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SIFTLINE_CACHE", str(tmp_path))
    assert demo.default_cache_dir() == tmp_path / "demo"
    assert demo.demo_corpus_path(None).name.endswith("-full")
    assert demo.demo_corpus_path(MAX_BYTES).parent == tmp_path / "demo"
    assert demo.demo_corpus_path(MAX_BYTES).name.endswith(f"-{MAX_BYTES}")
    monkeypatch.delenv("SIFTLINE_CACHE")
    assert demo.default_cache_dir() == pathlib.Path.home() / ".cache" / "siftline" / "demo"
