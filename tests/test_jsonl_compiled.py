"""The compiled JSON Lines parser (`_jsonl_parse.c`) against the line path, line by line.

It may hand any line to the line path, but a line it reads itself must come out exactly as
`line_result` reads it. Random records with every JSON construct, then thousands of random
byte mutations of them (most of which break the JSON somewhere), are checked one by one; and
it must read the clean shapes itself, or it saves nothing.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from siftline.config import FieldMap
from siftline.io import jsonl_compiled
from siftline.io.jsonl import Reject, line_result
from siftline.io.jsonl_compiled import CompiledJsonl
from siftline.io.jsonl_fast import Rows

pytestmark = pytest.mark.skipif(jsonl_compiled.compiled is None,
                                reason="the compiled JSON Lines parser is not built here")
SOURCE = "s3://bucket/part.jsonl"
STRINGS = ["plain", "", "café ✓", "emoji \U0001f600", "nul \x00", "tab\tnew\nline\r", "ｆｕｌｌ",
           'quote " and \\ back', "\x7f\x1f\u2028", "\ud83d\ude00".encode("utf-16", "surrogatepass")
           .decode("utf-16"), "x" * 40]
VALUES: list[Any] = [None, True, False, 0, -1, 12345678901234, 1.5, -2e-3, 1e300, [], {},
                     [1, "a", [None]], {"k": {"j": [True]}}, "str"]
MUTATIONS = b'"\\{}[],: \t\r0123456789eE.+-ntfulsrai/\x00\x01\x7f\x80\xc3\xa9\xed\xf0\xff'


def _record(rng: random.Random) -> dict[str, Any]:
    """A record with the wanted keys in any order, sometimes missing, null or mistyped."""
    record: dict[str, Any] = {}
    keys = ["text", "id", "domain", "meta", "n", "x y", "é"]
    rng.shuffle(keys)
    for key in keys:
        pick = rng.random()
        if key == "text":
            record[key] = rng.choice(STRINGS) + rng.choice(STRINGS) if pick < 0.9 else \
                rng.choice(VALUES)
        elif key == "id":
            if pick < 0.4:
                record[key] = rng.choice(STRINGS)
            elif pick < 0.7:
                record[key] = rng.choice([0, 7, -12, 2**63 - 1, 10**30, -(10**18)])
            elif pick < 0.9:
                record[key] = rng.choice(VALUES)
        elif key == "domain":
            if pick < 0.7:
                record[key] = rng.choice(["web", "", "bücher", "a\"b"])
            elif pick < 0.9:
                record[key] = rng.choice(VALUES)
        elif pick < 0.5:
            record[key] = rng.choice(VALUES + STRINGS)
    return record


def _line(rng: random.Random) -> bytes:
    record = _record(rng)
    separators = rng.choice([(", ", ": "), (",", ":"), (" , ", " :  ")])
    line = json.dumps(record, ensure_ascii=rng.random() < 0.4, separators=separators).encode()
    if rng.random() < 0.1:
        line = rng.choice([b" ", b"\t", b"\r", b""]) + line + rng.choice([b" ", b"\r", b""])
    return line


def _mutate(line: bytes, rng: random.Random) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data) + 1)
        kind = rng.random()
        byte = MUTATIONS[rng.randrange(len(MUTATIONS))]
        if kind < 0.4 and at < len(data):
            data[at] = byte
        elif kind < 0.7:
            data.insert(at, byte)
        elif at < len(data):
            del data[at]
    return bytes(data).replace(b"\n", b" ")


def _compiled_results(lines: list[bytes], fields: FieldMap, path_domain: str | None,
                      base: int) -> tuple[list[Any], int]:
    """What the reader makes of the block: per line, its row or reject (line path for the
    lines handed back), and how many lines the parser read itself."""
    reader = CompiledJsonl(fields, SOURCE, path_domain)
    count, items = reader.block(b"\n".join(lines) + b"\n", base, 0)
    assert count == len(lines)
    out: list[Any] = []
    for item in items:
        if isinstance(item, Rows):
            out += list(zip(item.ids.to_pylist(), item.texts.to_pylist(),
                            item.domains.to_pylist(), strict=True))
        else:
            out.append(line_result(item.raw, item.offset, item.line, fields, SOURCE,
                                   path_domain))
    return [r for r in out if r is not None], len(lines) - reader.fallbacks


def _expected(lines: list[bytes], fields: FieldMap, path_domain: str | None,
              base: int) -> list[Any]:
    out, offset = [], base
    for number, line in enumerate(lines, 1):
        out.append(line_result(line, offset, number, fields, SOURCE, path_domain))
        offset += len(line) + 1
    return [r for r in out if r is not None]


def _key(result: Any) -> Any:
    return result.to_dict() if isinstance(result, Reject) else result


@pytest.mark.parametrize("path_domain", [None, "from-path"])
@pytest.mark.parametrize("seed", range(4))
def test_lines_it_reads_are_read_as_the_line_path_reads_them(seed, path_domain) -> None:
    rng = random.Random(seed)
    fields = FieldMap()
    clean = [_line(rng) for _ in range(1500)]
    mutated = [_mutate(rng.choice(clean), rng) for _ in range(3000)]
    for lines in (clean, mutated, rng.sample(clean + mutated, 2000)):
        base = rng.choice([0, 17, 10**12])
        got, fast = _compiled_results(lines, fields, path_domain, base)
        want = _expected(lines, fields, path_domain, base)
        assert [_key(r) for r in got] == [_key(r) for r in want]
        accepted = sum(1 for r in want if not isinstance(r, Reject))
        assert fast >= 0.8 * accepted or lines is not clean, (fast, accepted)


def test_other_field_names_and_keys_written_with_escapes() -> None:
    """Keys are matched as decoded: `b\\u006fdy` is `body`."""
    fields = FieldMap(text="body", id="uid", domain="src")
    lines = [b'{"uid": 4, "body": "b", "src": "s", "text": "not this"}',
             b'{"b\\u006fdy": "escaped key", "uid": "u"}', b'{"body": "x", "uid": null}',
             b'{"body": "dup", "body": "last wins"}', b'{"src": "only a domain"}']
    got, fast = _compiled_results(lines, fields, None, 0)
    assert [_key(r) for r in got] == [_key(r) for r in _expected(lines, fields, None, 0)]
    assert fast == 3


def test_clean_lines_are_all_read_by_the_parser() -> None:
    lines = [json.dumps({"id": i if i % 2 else f"d{i}", "text": s, "domain": "web"},
                        ensure_ascii=i % 3 == 0).encode() for i, s in enumerate(STRINGS * 20)]
    lines += [b'{"text": "a", "meta": {"x": [1, 2.5e-3, {"y": null}]}, "f": false}',
              b'  {"text":"spaces"}  \r', b'{"text": "pair \\ud83d\\ude00 \\u00e9 \\/"}']
    got, fast = _compiled_results(lines, FieldMap(), None, 0)
    assert fast == len(lines)
    assert got == _expected(lines, FieldMap(), None, 0)


def test_buffers_too_small_are_refused() -> None:
    block = b'{"text": "abc"}\n'
    small = np.empty(1, np.uint8)
    with pytest.raises(ValueError, match="text_data"):
        jsonl_compiled.compiled.parse_block(
            block, b"text", b"id", b"domain", True, 100, b"s:", 0, b"unknown",
            np.empty(2, np.uint8), np.empty(2, np.int64), small, np.empty(3, np.int32),
            np.empty(1000, np.uint8), np.empty(3, np.int32), np.empty(1000, np.uint8),
            np.empty(3, np.int32))
    with pytest.raises(ValueError, match="more lines than room"):
        jsonl_compiled.compiled.parse_block(
            block * 3, b"text", b"id", b"domain", True, 100, b"s:", 0, b"unknown",
            np.empty(2, np.uint8), np.empty(2, np.int64), np.empty(100, np.uint8),
            np.empty(3, np.int32), np.empty(1000, np.uint8), np.empty(3, np.int32),
            np.empty(1000, np.uint8), np.empty(3, np.int32))
