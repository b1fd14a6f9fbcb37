"""The block reader against the line reader (`json.loads` per line).

The block reader parses with the compiled one-pass parser (`jsonl_compiled`) where it is built
and the fields allow, else with pyarrow (`jsonl_fast`); every test here runs with both. Both
must give the line reader's tables and rejects for every split of every file: random mixtures
of good lines and every kind of bad line, over random split boundaries and small read blocks
(so lines straddle blocks and overlong lines occur). And the block reader must really be the
fast one: clean input never falls back to the line path.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from siftline.config import FieldMap, InputConfig
from siftline.io import inputs, jsonl_compiled, jsonl_fast, readers
from siftline.io import jsonl as jsonl_mod
from siftline.io.jsonl import iter_blocks, iter_lines
from siftline.io.jsonl_compiled import CompiledJsonl
from siftline.io.jsonl_fast import FastJsonl, Rows
from siftline.io.storage import Storage

UNICODE = ["plain", "café ✓", "emoji \U0001f600", "nul \x00 char", "tab\tand\nnewline", "ｆｕｌｌ"]
BAD_UTF8 = [b"\xe9", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\x80",
            b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]


@pytest.fixture(autouse=True, params=["compiled", "pyarrow"])
def block_parser(request, monkeypatch) -> str:
    """Each test twice: with the compiled parser (where built) and with pyarrow's reader."""
    if request.param == "pyarrow":
        monkeypatch.setattr(jsonl_compiled, "compiled", None)
    elif jsonl_compiled.compiled is None:
        pytest.skip("the compiled JSON Lines parser is not built here")
    return request.param


def _good(rng: random.Random, nested: bool, id_style: str) -> dict[str, Any]:
    """A record that both readers accept, in one of many shapes."""
    record: dict[str, Any] = {"text": rng.choice(UNICODE) + " " + "w" * rng.randint(0, 60)}
    pick = rng.random()
    if pick < 0.1:
        record["id"] = None
    elif pick < 0.8:
        if id_style == "int":
            record["id"] = rng.choice([rng.randint(-(10**12), 10**12), 0, 2**63 - 1])
        else:
            record["id"] = f"doc-{rng.randint(0, 10**6)}"
    domain = rng.choice(["web", "", None, "bücher", "missing"])
    if domain != "missing":
        if nested:
            record["meta"] = rng.choice([{"domain": domain}, {"other": 1}, None])
        else:
            record["domain"] = domain
    if rng.random() < 0.3:
        record["extra"] = rng.choice([[1, {"text": "nested"}], {"id": 3}, 1.5, True, "x"])
    return record


def _dump(record: dict[str, Any], rng: random.Random) -> bytes:
    return json.dumps(record, ensure_ascii=rng.random() < 0.5).encode()


def _bad(rng: random.Random) -> bytes:
    """A line the two parsers could disagree on; mostly rejects, some accepted."""
    text = json.dumps(rng.choice(UNICODE))
    return rng.choice([
        b"", b"   ", b" \t ", b"\r", b"\x0b", b"\x0c \t",  # blank and whitespace-only
        b'{"id": "x", "text": "abc"',  # invalid JSON
        b'{"text": "caf' + rng.choice(BAD_UTF8) + b'"}',  # invalid UTF-8 in the text
        b'{"text": "ok", "junk": "' + rng.choice(BAD_UTF8) + b'"}',  # ... in an ignored field
        b'["text", "an array"]', b'"just a string"', b"42", b"null",
        b'{"body": "no text"}', b'{"text": 42}', b'{"text": null}', b'{"text": ["a"]}',
        b'{"text": {"a": 1}}', b'{"text": "a\\ud800b"}', b'{"text": "\\udc00"}',
        b'{"text": "pair \\ud83d\\ude00"}', b'{"text": "hi \\ud83d\\u0041"}',
        b'{"id": "\\ud800", "text": "bad id"}', b'{"text": "ok", "domain": "\\udc00"}',
        b'{"text": "ok", "junk": "\\ud800"}',  # a lone surrogate where no field is read
        b'{"text": "ok", "domain": 3}', b'{"id": {"a": 1}, "text": "dict id"}',
        b'{"id": true, "text": "bool id"}', b'{"id": 1.0, "text": "float id"}',
        b'{"id": 1e3, "text": "exp id"}', b'{"id": 123456789012345678901234567890, "text": "big"}',
        b'{"id": -0, "text": "minus zero"}',
        b'{"text": "a", "text": "b"}', b'{"id": "1", "id": "2", "text": "t"}',  # duplicate keys
        b'{"text": "x", "domain": "a", "domain": null}', b'{"text": "x", "extra": 1, "extra": 2}',
        b'{"text": "t", "x": Inf}', b'{"text": "t", "x": -Inf}', b'{"text": "t", "x": -NaN}',
        b'{"text": "t", "x": NaN}', b'{"text": "t", "x": -Infinity}', b'{"text": "t", "x": 1e400}',
        b'{"text": "Inf, -NaN]"}',  # the same bytes inside a string
        b'{"text": "a"}{"text": "b"}', b'{"text": "a"} {"text": "b"}', b'{"text": "a"}\r{"x": 1}',
        b'{"text": "a"} x', b'  {"text": "lead"}', b'{"text": "trail"}  ', b'{"text": "cr"}\r',
        b'\xef\xbb\xbf{"text": "bom"}', b'{"text": "ctl \x01"}', b'{"te\\u0078t": "escaped key"}',
        b'{"te\\u0078t": "b", "text": "a"}',
        b'{"text": "x", "t": ' + b"[" * 600 + b"]" * 600 + b"}",
        b'{"text": "x", "t": ' + b"[" * 50 + b"]" * 50 + b"}",
        b'{"text":', b'"split across lines"}', b"{", b"}", b"{}",
        b'{"text": ' + text.encode() + b"}",
        b'{"text": "ok", "domain": "' + b"d" * 400 + b'"}',  # overlong when MAX_LINE_BYTES is low
    ])


def _nested_bad(rng: random.Random) -> bytes:
    """Lines about a dotted domain path: literal key vs nested object, nulls, non-objects."""
    return rng.choice([
        b'{"text": "a", "meta.domain": "literal"}',
        b'{"text": "a", "meta.domain": null, "meta": {"domain": "nested"}}',
        b'{"text": "a", "meta.domain": "lit", "meta": {"domain": "nested"}}',
        b'{"text": "a", "meta": "not a dict"}', b'{"text": "a", "meta": [1]}',
        b'{"text": "a", "meta": {"domain": 5}}', b'{"text": "a", "meta": {"domain": "\\ud800"}}',
        b'{"text": "a", "meta": {"domain": "x", "domain": "y"}}',
        b'{"text": "a", "meta": {"domain": "x"}, "meta": {"other": 1}}',
        b'{"text": "null", "meta": {"domain": "nested"}}',
    ])


def _corpus(seed: int, n: int, nested: bool = False, bad_rate: float = 0.25) -> bytes:
    """Good and bad lines; ids are strings or ints by stretches, as files tend to have them."""
    rng = random.Random(seed)
    lines, id_style = [], "str"
    for _ in range(n):
        if rng.random() < 0.02:
            id_style = "int" if id_style == "str" else "str"
        if rng.random() >= bad_rate:
            lines.append(_dump(_good(rng, nested, id_style), rng))
        elif nested and rng.random() < 0.5:
            lines.append(_nested_bad(rng))
        else:
            lines.append(_bad(rng))
    eol = b"\r\n" if rng.random() < 0.2 else b"\n"
    return eol.join(lines) + (eol if rng.random() < 0.7 else b"")


def _read(path: Path, fields: FieldMap, split_bytes: int, fast: bool) -> list[tuple]:
    """Per split: (rows, rejects) of one reader."""
    config = InputConfig(paths=[str(path)], split_bytes=split_bytes, fields=fields)
    storage = Storage()
    out = []
    readers.JSONL_FAST = fast
    try:
        for split in inputs.plan_splits(config, storage, [str(path)]):
            batches = list(readers.read_split(split, config, storage))
            table = pa.concat_tables([b.table for b in batches]) if batches else None
            assert table is None or table.schema == readers.BASE_SCHEMA
            rows = table.to_pylist() if table is not None else []
            out.append((rows, [r.to_dict() for b in batches for r in b.rejects]))
    finally:
        readers.JSONL_FAST = True
    return out


FIELDS = {
    "default": (FieldMap(), False),
    "nested": (FieldMap(text="text", id="id", domain="meta.domain"), True),
    "from_path": (FieldMap(domain_from_path=r"/(\w+)\.jsonl$"), False),
}


@pytest.mark.parametrize("fields", sorted(FIELDS))
@pytest.mark.parametrize("seed", range(6))
def test_block_reader_matches_line_reader(tmp_path, monkeypatch, fields, seed) -> None:
    rng = random.Random(seed)
    field_map, nested = FIELDS[fields]
    monkeypatch.setattr(jsonl_mod, "BLOCK_BYTES", rng.choice([64, 500, 4096, 8 << 20]))
    monkeypatch.setattr(jsonl_mod, "MAX_LINE_BYTES", rng.choice([300, 1000, 256 << 20]))
    monkeypatch.setattr(jsonl_fast, "MIN_LINES", rng.choice([1, 1, 4, 32]))
    monkeypatch.setattr(jsonl_fast, "MAX_FAILURES", rng.choice([0, 16, 10**6, 10**6]))
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(_corpus(seed, 400, nested))
    size = path.stat().st_size
    for split_bytes in [size + 1, *(rng.randint(20, size // 3) for _ in range(3))]:
        expected = _read(path, field_map, split_bytes, fast=False)
        assert _read(path, field_map, split_bytes, fast=True) == expected, split_bytes
    rows = [row for split, _ in expected for row in split]
    assert len(rows) > 200 and len([1 for _, rejects in expected for _ in rejects]) > 20


def test_block_reader_matches_on_gzip(tmp_path) -> None:
    import gzip

    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(_corpus(11, 300), mtime=0))
    expected = _read(path, FieldMap(), 10**9, fast=False)
    assert _read(path, FieldMap(), 10**9, fast=True) == expected


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 8 << 20])
def test_iter_blocks_yields_the_lines_of_iter_lines(monkeypatch, block_bytes) -> None:
    monkeypatch.setattr(jsonl_mod, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(jsonl_mod, "MAX_LINE_BYTES", 40)
    rng = random.Random(block_bytes)
    pieces = [b"x" * rng.choice([0, 0, 1, 5, 30, 39, 40, 41, 45, 90]) for _ in range(80)]
    for data in (b"\n".join(pieces), b"\n".join(pieces) + b"\n"):
        cuts = sorted({0, *rng.sample(range(1, len(data)), 25)})
        for start, end in zip(cuts, [*cuts[1:], None], strict=True):
            assert _block_lines(data, start, end) == _lines(data, start, end), (start, end)


def _lines(data: bytes, start: int, end: int | None) -> list[tuple[int, bytes | None]]:
    stream = io.BytesIO(data)
    stream.seek(max(start - 1, 0))
    return list(iter_lines(stream, start, end))


def _block_lines(data: bytes, start: int, end: int | None) -> list[tuple[int, bytes | None]]:
    stream = io.BytesIO(data)
    stream.seek(max(start - 1, 0))
    out: list[tuple[int, bytes | None]] = []
    for offset, block in iter_blocks(stream, start, end):
        if block is None:
            out.append((offset, None))
            continue
        assert block and (block.endswith(b"\n") or offset + len(block) == len(data))
        for piece in block.split(b"\n")[: block.count(b"\n") + (not block.endswith(b"\n"))]:
            out.append((offset, piece))
            offset += len(piece) + 1
    return out


def _clean_block(n: int, int_ids: bool = False) -> bytes:
    rng = random.Random(n)
    lines = [_dump({"id": i if int_ids else f"d{i}", "text": rng.choice(UNICODE) * 20,
                    "domain": rng.choice(["web", "news"])}, rng) for i in range(n)]
    return b"\n".join(lines) + b"\n"


def _block_reader() -> CompiledJsonl | FastJsonl:
    """The reader `read_split` picks for the default fields."""
    usable = CompiledJsonl.usable(FieldMap(), None)
    return (CompiledJsonl if usable else FastJsonl)(FieldMap(), "src", None)


@pytest.mark.parametrize("int_ids", [False, True])
def test_clean_input_takes_the_fast_path(int_ids) -> None:
    fast = _block_reader()
    for _ in range(2):  # the second block reads ints first: no failed read at all
        count, items = fast.block(_clean_block(500, int_ids), 0, 0)
        got = list(items)
        assert count == 500 and all(isinstance(item, Rows) for item in got)
        assert sum(len(item.texts) for item in got) == 500
    assert fast.fallbacks == 0


def test_one_bad_line_costs_one_fallback(monkeypatch) -> None:
    monkeypatch.setattr(jsonl_fast, "MIN_LINES", 1)
    lines = _clean_block(300).split(b"\n")
    lines[123] = b'{"text": 5}'
    lines[200] = b'{"id": "x", "text": "t", "junk": -Inf}'
    fast = _block_reader()
    count, items = fast.block(b"\n".join(lines), 0, 0)
    got = list(items)
    assert fast.fallbacks == 2
    assert [item.line for item in got if not isinstance(item, Rows)] == [124, 201]
    assert sum(len(item.texts) for item in got if isinstance(item, Rows)) == 298


def test_values_spanning_lines_are_caught_even_when_row_counts_agree(tmp_path, monkeypatch):
    """Two lines that pyarrow reads as one value, and one line it reads as two: the row count
    matches the line count, so only the line-shape screen keeps them apart."""
    monkeypatch.setattr(jsonl_fast, "MIN_LINES", 1)
    lines = [b'{"text": "a", "x":', b'{"y": 1}}', b'{"text": "b"}{"text": "c"}', b'{"text": "d"}']
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\n".join(lines * 3) + b"\n")
    expected = _read(path, FieldMap(), 10**9, fast=False)
    assert len(expected[0][1]) == 9
    assert _read(path, FieldMap(), 10**9, fast=True) == expected


def test_nesting_too_deep_for_json_loads_fails_alike(tmp_path) -> None:
    """The line reader's `json.loads` raises RecursionError (uncaught); pyarrow would read the
    line, so the block reader leaves it to the line reader and fails the same way."""
    path = tmp_path / "deep.jsonl"
    deep = b'{"text": "x", "t": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path.write_bytes(_clean_block(100) + deep + b"\n")
    for fast in (False, True):
        with pytest.raises(RecursionError):
            _read(path, FieldMap(), 10**9, fast)


def test_integer_too_long_for_json_loads_fails_alike(tmp_path) -> None:
    """An integer over `sys.get_int_max_str_digits()` digits makes `json.loads` raise
    ValueError (uncaught by the line reader); pyarrow would read it, so it is left alone."""
    path = tmp_path / "digits.jsonl"
    long_int = b'{"text": "x", "n": -' + b"7" * 5000 + b"}"
    path.write_bytes(_clean_block(100) + long_int + b"\n" + _clean_block(100))
    for fast in (False, True):
        with pytest.raises(ValueError, match="digits"):
            _read(path, FieldMap(), 10**9, fast)
    ok = tmp_path / "ok.jsonl"  # as many digits in a string, or as a float, are fine
    ok.write_bytes(b'{"text": "' + b"7" * 5000 + b'", "f": 1.' + b"7" * 5000 + b"}\n")
    assert _read(ok, FieldMap(), 10**9, True) == _read(ok, FieldMap(), 10**9, False)


def test_read_split_uses_the_block_reader(tmp_path, monkeypatch) -> None:
    def no_line_reader(*args: Any) -> None:
        raise AssertionError("the line reader was used")

    path = tmp_path / "clean.jsonl"
    path.write_bytes(_clean_block(50))
    monkeypatch.setattr(readers, "_read_jsonl_lines", no_line_reader)
    assert len(_read(path, FieldMap(), 10**9, fast=True)[0][0]) == 50


def test_fields_no_schema_can_mirror_use_the_line_reader(tmp_path) -> None:
    """`text` at `meta` and the domain at `meta.domain`: one path inside another."""
    fields = FieldMap(text="meta", domain="meta.domain")
    assert not FastJsonl.usable(fields, None)
    assert FastJsonl.usable(fields, "from-path") and FastJsonl.usable(FieldMap(), None)
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"meta": "t"}\n{"meta": {"domain": "d"}}\n')
    assert _read(path, fields, 10**9, fast=True) == _read(path, fields, 10**9, fast=False)
