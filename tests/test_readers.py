"""Input reading: formats, compression, path expansion, byte-range splits and field mapping."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import (
    jsonl_bytes,
    read_data,
    read_rejects,
    read_scored,
    write_jsonl,
    write_parquet,
)

from siftline import ConfigError
from siftline.io import jsonl as jsonl_mod
from siftline.io.inputs import expand_inputs
from siftline.io.jsonl import iter_lines
from siftline.io.storage import Storage


def _docs(out: Path) -> list[tuple[str, str, str]]:
    table = read_data(out)
    return list(zip(*(table.column(c).to_pylist() for c in ("id", "text", "domain")), strict=True))


def _records(n: int, prefix: str = "doc") -> list[dict[str, str]]:
    domains = ("web", "books", "code")
    return [
        {"id": f"{prefix}-{i:04d}", "text": f"{prefix} text {i} é ✓", "domain": domains[i % 3]}
        for i in range(n)
    ]


# -- the top-level API ---------------------------------------------------------------------
def test_pipeline_run_stays_callable() -> None:
    import siftline
    import siftline.job.runner  # noqa: F401  (what the first siftline.run(...) call does)

    assert callable(siftline.run)


# -- formats -------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "compression"), [("c.jsonl.gz", "gzip"), ("c.jsonl.zst", "zstd")])
def test_compressed_jsonl_reads_like_plain(tmp_path, run_job, name, compression) -> None:
    records = [*_records(40), {"text": "no id, no domain"}]
    plain = write_jsonl(tmp_path / "plain" / "c.jsonl", records)
    packed = write_jsonl(tmp_path / "packed" / name, records, compression=compression)
    run_job(plain, tmp_path / "out_plain")
    result = run_job(packed, tmp_path / "out_packed")
    assert [s["compression"] for s in result.manifest["splits"]] == [compression]
    expected = _docs(tmp_path / "out_plain")
    got = _docs(tmp_path / "out_packed")
    assert len(got) == 41
    assert got[:40] == expected[:40]
    # The derived id is `source:offset`, the offset counted in the decompressed stream.
    assert got[40][1:] == expected[40][1:] == ("no id, no domain", "unknown")
    offset = len(jsonl_bytes(records[:40]))
    assert expected[40][0] == f"{plain}:{offset}"
    assert got[40][0] == f"{packed}:{offset}"


def test_parquet_multiple_row_groups_and_int_ids(tmp_path, run_job) -> None:
    rows = [{"id": i, "text": f"row {i}", "domain": "web" if i % 2 else None} for i in range(50)]
    path = write_parquet(tmp_path / "in" / "p.parquet", rows, row_group_size=7)
    run_job(path)
    data = read_data(tmp_path / "out")
    assert data.schema.field("id").type == pa.string()
    assert data.column("id").to_pylist() == [str(i) for i in range(50)]
    assert data.column("text").to_pylist() == [f"row {i}" for i in range(50)]
    assert data.column("domain").to_pylist() == ["web" if i % 2 else "unknown" for i in range(50)]
    assert set(data.column("source").to_pylist()) == {str(path)}


def test_hf_save_to_disk_dataset(tmp_path, run_job) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(_records(12, "hf"))
    ds.save_to_disk(str(tmp_path / "hf"))
    run_job(tmp_path / "hf")
    expected = [(r["id"], r["text"], r["domain"]) for r in _records(12, "hf")]
    assert _docs(tmp_path / "out") == expected


def test_hf_dataset_dict_reads_every_split_in_order(tmp_path, run_job) -> None:
    datasets = pytest.importorskip("datasets")
    train = datasets.Dataset.from_list(_records(5, "train"))
    test = datasets.Dataset.from_list([{"text": "test zero"}, {"text": "test one"}])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "hfd"))
    result = run_job(tmp_path / "hfd")
    arrow_test = result.manifest["splits"][-1]["uri"]
    assert [s["format"] for s in result.manifest["splits"]] == ["arrow", "arrow"]
    assert arrow_test.startswith(str(tmp_path / "hfd" / "test"))
    expected = [(r["id"], r["text"], r["domain"]) for r in _records(5, "train")]
    expected += [
        (f"{arrow_test}:0", "test zero", "unknown"),
        (f"{arrow_test}:1", "test one", "unknown"),
    ]
    assert _docs(tmp_path / "out") == expected


# -- path expansion ------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for rel in ("b.jsonl", "a.jsonl", "sub/c.jsonl", "a2.jsonl.gz", "_skip.jsonl", ".hidden.jsonl"):
        write_jsonl(root / rel, [{"text": f"from {rel}"}], "gzip" if rel.endswith(".gz") else None)
    write_parquet(root / "z.parquet", [{"text": "from z.parquet"}])
    (root / "notes.txt").write_text("not an input")
    return root


def test_folder_expands_sorted_and_skips_hidden_and_unknown(tree: Path) -> None:
    files = expand_inputs([str(tree)], Storage())
    rel = [Path(f).relative_to(tree).as_posix() for f in files]
    assert rel == ["a.jsonl", "a2.jsonl.gz", "b.jsonl", "sub/c.jsonl", "z.parquet"]


def test_globs_expand_sorted_in_given_order_without_duplicates(tree: Path) -> None:
    paths = [
        str(tree / "z.parquet"),
        str(tree / "[a-z]*.jsonl*"),
        str(tree / "a.jsonl"),
        str(tree / "*" / "*.jsonl"),
    ]
    files = expand_inputs(paths, Storage())
    rel = [Path(f).relative_to(tree).as_posix() for f in files]
    assert rel == ["z.parquet", "a.jsonl", "a2.jsonl.gz", "b.jsonl", "sub/c.jsonl"]


def test_folder_run_reads_files_in_sorted_order(tree: Path, tmp_path: Path, run_job) -> None:
    result = run_job(tree)
    uris = [Path(s["uri"]).relative_to(tree).as_posix() for s in result.manifest["splits"]]
    assert uris == ["a.jsonl", "a2.jsonl.gz", "b.jsonl", "sub/c.jsonl", "z.parquet"]
    texts = read_data(tmp_path / "out").column("text").to_pylist()
    assert texts == [f"from {u}" for u in uris]


@pytest.mark.parametrize("missing", ["nope.jsonl", "no_folder", "*.nothing.jsonl"])
def test_missing_input_is_a_config_error_naming_it(tmp_path, run_job, missing) -> None:
    write_jsonl(tmp_path / "in" / "ok.jsonl", [{"text": "fine"}])
    path = str(tmp_path / "in" / missing)
    with pytest.raises(ConfigError, match=path.replace("*", r"\*")):
        run_job([tmp_path / "in" / "ok.jsonl", path])
    assert not (tmp_path / "out" / "data").exists()


# -- byte-range splits ---------------------------------------------------------------------
def _split_corpus() -> list[dict | bytes]:
    """~300 lines: 100-byte lines first (so lines start exactly on 1000-byte boundaries), then
    lines of random length, blank lines and a few bad lines."""
    rng = random.Random(7)
    lines: list[dict | bytes] = []
    for i in range(100):
        line = json.dumps({"text": f"fixed {i:03d} "}).encode()
        lines.append(line + b" " * (99 - len(line)))  # 99 bytes + newline
    for i in range(200):
        kind = rng.random()
        if kind < 0.05:
            lines.append(b"")
        elif kind < 0.08:
            lines.append(b'{"text": broken')
        else:
            lines.append({"text": f"var {i} " + "x" * rng.randint(0, 180)})
    return lines


def _row_view(table: pa.Table, columns: tuple[str, ...]) -> list[tuple]:
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def test_jsonl_byte_range_splits_read_every_line_once(tmp_path, run_job) -> None:
    lines = _split_corpus()
    path = write_jsonl(tmp_path / "in" / "big.jsonl", lines)
    one = run_job(path, tmp_path / "one")
    many = run_job(path, tmp_path / "many", input__split_bytes=1000)
    size = path.stat().st_size
    assert len(one.manifest["splits"]) == 1
    assert len(many.manifest["splits"]) == -(-size // 1000) > 20
    # the expected documents, from the file itself: id = path:offset of each good line
    offsets, expected = 0, []
    for line in lines:
        raw = line if isinstance(line, bytes) else json.dumps(line).encode()
        if raw.startswith(b'{"text": "'):
            expected.append((f"{path}:{offsets}", json.loads(raw)["text"]))
        offsets += len(raw) + 1
    assert sum(1 for doc_id, _ in expected if int(doc_id.rsplit(":", 1)[1]) % 1000 == 0) >= 10
    for out in ("one", "many"):
        assert _row_view(read_data(tmp_path / out), ("id", "text")) == expected
    cols = ("id", "domain", "n_bytes", "drop_reason")
    assert _row_view(read_scored(tmp_path / "one"), cols) == _row_view(
        read_scored(tmp_path / "many"), cols
    )

    def positions(out: str) -> list[tuple]:
        return [(r["source"], r["byte_offset"], r["error"]) for r in read_rejects(tmp_path / out)]

    assert positions("one") == positions("many") and len(positions("one")) >= 3
    assert one.stats["input_records"] == many.stats["input_records"]
    assert many.stats["input_records"] == len(expected) + len(positions("one"))


def test_parquet_splits_by_row_groups(tmp_path, run_job) -> None:
    rows = [{"text": f"parquet row {i} " + "y" * (i % 13)} for i in range(60)]
    path = write_parquet(tmp_path / "in" / "p.parquet", rows, row_group_size=8)
    one = run_job(path, tmp_path / "one")
    many = run_job(path, tmp_path / "many", input__split_bytes=1)
    assert len(one.manifest["splits"]) == 1
    # one split per row group (the last one may say `None`, "to the end")
    ranges = [(s["start"], s["end"] or 8) for s in many.manifest["splits"]]
    assert ranges == [(g, g + 1) for g in range(8)]
    expected = [(f"{path}:{i}", r["text"]) for i, r in enumerate(rows)]
    for out in ("one", "many"):
        assert _row_view(read_data(tmp_path / out), ("id", "text")) == expected
    cols = ("id", "n_bytes", "drop_reason")
    assert _row_view(read_scored(tmp_path / "one"), cols) == _row_view(
        read_scored(tmp_path / "many"), cols
    )


def _reference_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Every line with its start offset; a trailing newline does not start an empty line."""
    out, pos = [], 0
    for piece in data.split(b"\n"):
        out.append((pos, piece))
        pos += len(piece) + 1
    if data.endswith(b"\n") or not data:
        out.pop()
    return out


def _read_ranges(data: bytes, cuts: list[int]) -> list[tuple[int, bytes | None]]:
    got: list[tuple[int, bytes | None]] = []
    bounds = [0, *cuts]
    for start, end in zip(bounds, [*cuts, None], strict=True):
        stream = io.BytesIO(data)
        stream.seek(max(start - 1, 0))
        got.extend(iter_lines(stream, start, end))
    return got


@pytest.mark.parametrize("block_bytes", [1, 3, 16, 8 << 20])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_iter_lines_random_boundaries(monkeypatch, block_bytes, trailing_newline) -> None:
    monkeypatch.setattr(jsonl_mod, "BLOCK_BYTES", block_bytes)
    rng = random.Random(block_bytes * 2 + trailing_newline)
    pieces = [
        b"x" * rng.choice([0, 0, 1, 2, 5, 9, 30]) + b"\r" * (rng.random() < 0.1) for _ in range(60)
    ]
    data = b"\n".join(pieces) + (b"\n" if trailing_newline else b"")
    expected = _reference_lines(data)
    assert _read_ranges(data, []) == expected
    every = list(range(1, len(data)))
    assert _read_ranges(data, every) == expected  # a cut at every byte
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 20)))
        assert _read_ranges(data, cuts) == expected, cuts


def test_iter_lines_cut_exactly_at_line_starts() -> None:
    data = b"aaaa\nbbbb\n\ncccc\ndd"
    expected = [(0, b"aaaa"), (5, b"bbbb"), (10, b""), (11, b"cccc"), (16, b"dd")]
    for cut in (5, 10, 11, 16):
        assert _read_ranges(data, [cut]) == expected
        stream = io.BytesIO(data)
        stream.seek(cut - 1)
        assert next(iter_lines(stream, cut, None)) == next(e for e in expected if e[0] == cut)


def test_iter_lines_overlong_line_is_none_not_buffered(monkeypatch) -> None:
    monkeypatch.setattr(jsonl_mod, "BLOCK_BYTES", 4)
    monkeypatch.setattr(jsonl_mod, "MAX_LINE_BYTES", 10)
    data = b"ok\n" + b"z" * 100 + b"\nfine\n" + b"w" * 50
    expected = [(0, b"ok"), (3, None), (104, b"fine"), (109, None)]
    assert _read_ranges(data, []) == expected
    assert _read_ranges(data, [50, 104, 106]) == expected


# -- field mapping -------------------------------------------------------------------------
def test_custom_field_names_and_dotted_domain_jsonl(tmp_path, run_job) -> None:
    records = [
        {"uid": "u1", "body": "first body", "metadata": {"source_domain": "news"}},
        {"uid": 7, "body": "second body", "metadata": {"other": 1}},
        {"uid": "u3", "body": "third body", "metadata": "not a dict"},
        {"uid": "u4", "body": "fourth body", "metadata.source_domain": "flat"},
        {"uid": "u5", "body": "fifth body", "text": "ignored", "id": "ignored"},
    ]
    path = write_jsonl(tmp_path / "in" / "c.jsonl", records)
    run_job(
        path,
        input__fields__text="body",
        input__fields__id="uid",
        input__fields__domain="metadata.source_domain",
    )
    assert _docs(tmp_path / "out") == [
        ("u1", "first body", "news"),
        ("7", "second body", "unknown"),
        ("u3", "third body", "unknown"),
        ("u4", "fourth body", "flat"),
        ("u5", "fifth body", "unknown"),
    ]


def test_custom_field_names_and_struct_domain_parquet(tmp_path, run_job) -> None:
    rows = [
        {"uid": "p1", "body": "first body", "metadata": {"source_domain": "news"}},
        {"uid": None, "body": "second body", "metadata": {"source_domain": None}},
        {"uid": "p3", "body": "third body", "metadata": None},
    ]
    path = write_parquet(tmp_path / "in" / "c.parquet", rows)
    run_job(
        path,
        input__fields__text="body",
        input__fields__id="uid",
        input__fields__domain="metadata.source_domain",
    )
    assert _docs(tmp_path / "out") == [
        ("p1", "first body", "news"),
        (f"{path}:1", "second body", "unknown"),
        ("p3", "third body", "unknown"),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            r"/(\w+)-\d+\.(?:jsonl|parquet)$",
            {"web-1.jsonl": "web", "books-2.parquet": "books", "misc.jsonl": "unknown"},
        ),
        (r"web|books", {"web-1.jsonl": "web", "books-2.parquet": "books", "misc.jsonl": "unknown"}),
    ],
    ids=["group", "whole-match"],
)
def test_domain_from_path(tmp_path, run_job, pattern, expected) -> None:
    root = tmp_path / "in"
    write_jsonl(root / "web-1.jsonl", [{"text": "a web doc", "domain": "ignored"}])
    write_parquet(root / "books-2.parquet", [{"text": "a book", "domain": "ignored"}])
    write_jsonl(root / "misc.jsonl", [{"text": "misc doc", "domain": "ignored too"}])
    run_job(root, input__fields__domain_from_path=pattern)
    data = read_data(tmp_path / "out")
    got = {
        Path(s).name: d
        for s, d in zip(
            data.column("source").to_pylist(), data.column("domain").to_pylist(), strict=True
        )
    }
    assert got == expected


def test_derived_ids_are_offsets_and_rows_and_deterministic(tmp_path, run_job) -> None:
    lines = [{"text": "zero"}, b"", {"text": "two", "id": None}, {"text": "three"}]
    jpath = write_jsonl(tmp_path / "in" / "a.jsonl", lines)
    ppath = write_parquet(tmp_path / "in" / "b.parquet", [{"text": "p0"}, {"text": "p1"}])
    run_job(tmp_path / "in")
    first = _docs(tmp_path / "out")
    offsets = [
        0,
        len(b'{"text": "zero"}\n\n'),
        len(b'{"text": "zero"}\n\n{"text": "two", "id": null}\n'),
    ]
    assert [d[0] for d in first] == [f"{jpath}:{o}" for o in offsets] + [f"{ppath}:0", f"{ppath}:1"]
    assert {d[2] for d in first} == {"unknown"}
    run_job(tmp_path / "in", overwrite=True)
    assert _docs(tmp_path / "out") == first
