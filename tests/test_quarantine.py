"""Quarantine and reading-time drops, through the whole pipeline (local executor).

One module-scoped run over a folder with a JSON Lines file and three Parquet files, each bad
record planted at a known position; the tests then check the rejects, drop reasons, stats and
manifest against what was planted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import (
    local_config,
    read_data,
    read_rejects,
    read_scored,
    write_jsonl,
    write_parquet,
)

from siftline.job.runner import run as run_pipeline

MAX_DOC_BYTES = 64
LONG_TEXT = "long " * 40  # 200 bytes > MAX_DOC_BYTES

# (raw line or record, expected error substring or None for a good/dropped line)
JSONL_LINES: list[tuple[dict[str, Any] | bytes, str | None]] = [
    ({"id": "g1", "text": "good one", "domain": "web"}, None),
    (b'{"id": "bad-json", "text": "abc"', "invalid JSON"),
    (b'{"id": "bad-utf8", "text": "caf\xe9"}', "not valid UTF-8"),
    (b'["text", "an array"]', "expected a JSON object, got list"),
    (b'"just a string"', "expected a JSON object, got str"),
    ({"id": "no-text", "body": "text is elsewhere"}, "text field 'text' is missing"),
    ({"id": "int-text", "text": 42}, "text field 'text' is int, expected string"),
    ({"id": "null-text", "text": None}, "text field 'text' is null"),
    ({"id": "list-text", "text": ["a", "b"]}, "text field 'text' is list, expected string"),
    (b'{"id": "surrogate", "text": "a\\ud800b"}', "unpaired UTF-16 surrogate"),
    (
        b'{"id": "dom-surrogate", "text": "ok", "domain": "\\udc00"}',
        "domain field 'domain' contains an unpaired UTF-16 surrogate",
    ),
    ({"id": "int-domain", "text": "fine text", "domain": 3}, "domain field 'domain' is int"),
    ({"id": {"nested": 1}, "text": "dict id"}, "id field 'id' is dict"),
    ({"id": True, "text": "bool id"}, "id field 'id' is bool"),
    (b"", None),  # blank line: not a record
    (b"   \t ", None),  # whitespace-only line: not a record either
    ({"id": "g2", "text": "good two \ud83d\ude00", "domain": "books"}, None),  # a valid pair
    ({"id": "empty1", "text": "", "domain": "web"}, None),
    ({"id": "empty2", "text": "", "domain": "web"}, None),  # also an exact duplicate
    ({"id": "blank", "text": " \n\t\u3000 "}, None),
    ({"id": "long1", "text": LONG_TEXT, "domain": "books"}, None),
    ({"id": "long2", "text": LONG_TEXT, "domain": "books"}, None),  # also an exact duplicate
    ({"id": 9, "text": "good three"}, None),
]
JSONL_GOOD = {"g1", "g2", "9"}
JSONL_DROPPED = {
    "empty1": "empty",
    "empty2": "empty",
    "blank": "empty",
    "long1": "too_long",
    "long2": "too_long",
}


def _invalid_utf8_strings(values: list[bytes]) -> pa.Array:
    """A `string` array holding arbitrary bytes (pyarrow validates nothing when built so)."""
    offsets = [0]
    for value in values:
        offsets.append(offsets[-1] + len(value))
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(b"".join(values))],
    )


def _lines_bytes(lines: list[tuple[dict[str, Any] | bytes, str | None]]) -> list[bytes]:
    return [r if isinstance(r, bytes) else json.dumps(r).encode() for r, _ in lines]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("quarantine")
    inp = root / "in"
    jpath = write_jsonl(inp / "a.jsonl", [r for r, _ in JSONL_LINES])
    nulls = write_parquet(
        inp / "b_nulls.parquet",
        pa.table(
            {
                "id": ["p0", "p1", "p2", "p3"],
                "text": ["parquet good", None, "", "parquet fine"],
                "domain": ["web", "web", None, "code"],
            }
        ),
        row_group_size=2,
    )
    ints = write_parquet(inp / "c_ints.parquet", pa.table({"text": [1, 2, 3]}))
    utf8 = inp / "d_utf8.parquet"
    pq.write_table(
        pa.table(
            {
                "text": _invalid_utf8_strings([b"valid \xc3\xa9", b"bad \xff byte", b"also ok"]),
                "domain": ["code", "code", "code"],
            }
        ),
        utf8,
    )
    out = root / "out"
    result = run_pipeline(local_config(inp, out, input__max_doc_bytes=MAX_DOC_BYTES))
    return {
        "jsonl": jpath,
        "nulls": nulls,
        "ints": ints,
        "utf8": utf8,
        "out": out,
        "result": result,
    }


def _rejects_of(planted: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [r for r in read_rejects(planted["out"]) if r["source"] == str(planted[key])]


def test_jsonl_rejects_name_source_position_and_problem(planted) -> None:
    rejects = _rejects_of(planted, "jsonl")
    raws = _lines_bytes(JSONL_LINES)
    expected = []
    offset = 0
    for line_no, ((_, error), raw) in enumerate(zip(JSONL_LINES, raws, strict=True), 1):
        if error is not None:
            expected.append((offset, line_no, error, raw))
        offset += len(raw) + 1
    assert len(rejects) == len(expected) == 13
    for reject, (offset, line_no, error, raw) in zip(rejects, expected, strict=True):
        assert reject["byte_offset"] == offset, reject
        assert reject["line"] == line_no, reject
        assert error in reject["error"], reject
        assert reject["raw"] == raw.decode("utf-8", errors="replace"), reject
        assert reject["split"] == 0 and "row" not in reject


@pytest.mark.parametrize(
    ("key", "rows", "error"),
    [
        ("nulls", [1], "text field 'text' is null"),
        ("ints", [0, 1, 2], "text field 'text' is int64, expected string"),
        ("utf8", [1], "text field 'text' is not valid UTF-8"),
    ],
)
def test_parquet_rejects_name_row_and_problem(planted, key, rows, error) -> None:
    rejects = _rejects_of(planted, key)
    assert [r["row"] for r in rejects] == rows
    for reject in rejects:
        assert reject["error"] == error
        assert "byte_offset" not in reject and "line" not in reject


def test_kept_and_dropped_rows(planted) -> None:
    data = read_data(planted["out"])
    assert set(data.column("id").to_pylist()) == JSONL_GOOD | {"p0", "p3"} | {
        f"{planted['utf8']}:0",
        f"{planted['utf8']}:2",
    }
    assert "good two \U0001f600" in data.column("text").to_pylist()
    assert "valid é" in data.column("text").to_pylist()
    scored = read_scored(planted["out"])
    reasons = dict(
        zip(scored.column("id").to_pylist(), scored.column("drop_reason").to_pylist(), strict=True)
    )
    assert {k: v for k, v in reasons.items() if v is not None} == {**JSONL_DROPPED, "p2": "empty"}


def test_stats_account_for_every_planted_record(planted) -> None:
    stats = planted["result"].stats
    jsonl_records = sum(1 for raw in _lines_bytes(JSONL_LINES) if raw.strip())
    assert jsonl_records == len(JSONL_LINES) - 2  # the blank lines are not records
    assert stats["input_records"] == jsonl_records + 4 + 3 + 3
    assert stats["quarantined"] == 13 + 1 + 3 + 1
    assert stats["dropped"] == {"empty": 4, "too_long": 2}
    assert stats["kept"] == len(JSONL_GOOD) + 2 + 2
    assert stats["input_records"] == (
        stats["quarantined"] + stats["kept"] + sum(stats["dropped"].values())
    )
    inputs = {name: counts["input"] for name, counts in stats["by_domain"].items()}
    # web: g1, empty1, empty2, p0 | books: g2, long1, long2 | code: p3 + 2 utf8 rows
    # unknown: blank, 9, p2 (null domain)
    assert inputs == {"web": 4, "books": 3, "code": 3, "unknown": 3}
    kept = {name: counts["kept"] for name, counts in stats["by_domain"].items()}
    assert kept == {"web": 2, "books": 1, "code": 3, "unknown": 1}


def test_manifest_inputs_count_records_and_quarantined_per_file(planted) -> None:
    manifest = planted["result"].manifest
    per_file = {
        Path(e["uri"]).name: (e["records"], e["quarantined"], e["status"])
        for e in manifest["inputs"]
    }
    assert per_file == {
        "a.jsonl": (len(JSONL_LINES) - 2, 13, "done"),
        "b_nulls.parquet": (4, 1, "done"),
        "c_ints.parquet": (3, 3, "done"),
        "d_utf8.parquet": (3, 1, "done"),
    }
    assert sorted(manifest["outputs"]["rejects"]) == [
        f"rejects/part-{i:05d}.jsonl" for i in range(len(manifest["splits"]))
    ]


def test_rejects_in_later_byte_range_splits_keep_their_offsets(tmp_path, run_job) -> None:
    lines = [{"text": f"line {i} " + "p" * 40} for i in range(60)]
    lines[5] = b'{"text": 5}'
    lines[45] = b"{oops"
    path = write_jsonl(tmp_path / "in" / "s.jsonl", lines)
    raws = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in lines]
    offsets = [sum(len(r) + 1 for r in raws[:i]) for i in range(len(raws))]
    result = run_job(path, input__split_bytes=500)
    rejects = read_rejects(tmp_path / "out")
    assert [r["byte_offset"] for r in rejects] == [offsets[5], offsets[45]]
    assert rejects[0]["line"] == 6  # the first split starts the file: line numbers are exact
    assert rejects[1]["split"] > 0 and "line" not in rejects[1]
    assert "invalid JSON" in rejects[1]["error"]
    assert result.stats["quarantined"] == 2 and result.stats["kept"] == 58


def test_huge_document_is_dropped_as_too_long(tmp_path, run_job) -> None:
    huge = "word " * 300_000  # 1.5 MB > the default max_doc_bytes (1 MB)
    path = write_jsonl(tmp_path / "in" / "h.jsonl", [{"id": "h", "text": huge}, {"text": "small"}])
    result = run_job(path)
    assert result.stats["dropped"] == {"too_long": 1}
    assert read_data(tmp_path / "out").column("text").to_pylist() == ["small"]


def test_only_blank_lines_means_no_records(tmp_path, run_job) -> None:
    path = write_jsonl(tmp_path / "in" / "blank.jsonl", [b"", b"  ", b"\r", b""])
    result = run_job(path)
    assert result.stats["input_records"] == 0 and result.stats["quarantined"] == 0
    assert read_rejects(tmp_path / "out") == []


def test_surrogate_in_id_is_quarantined(tmp_path, run_job) -> None:
    path = write_jsonl(
        tmp_path / "in" / "s.jsonl", [b'{"id": "\\ud800", "text": "bad id"}', {"text": "fine"}]
    )
    result = run_job(path)
    assert result.stats["quarantined"] == 1 and result.stats["kept"] == 1
    assert "surrogate" in read_rejects(tmp_path / "out")[0]["error"]


def test_parquet_invalid_utf8_domain_is_quarantined(tmp_path, run_job) -> None:
    path = tmp_path / "in" / "d.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table({"text": ["one", "two"], "domain": _invalid_utf8_strings([b"ok", b"x\xffy"])}),
        path,
    )
    result = run_job(path)
    assert result.stats["quarantined"] == 1
    assert [r["row"] for r in read_rejects(tmp_path / "out")] == [1]


def test_parquet_invalid_utf8_id_is_quarantined(tmp_path, run_job) -> None:
    path = tmp_path / "in" / "i.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table({"text": ["one", "two"], "id": _invalid_utf8_strings([b"ok", b"x\xffy"])}), path
    )
    result = run_job(path)
    data = read_data(tmp_path / "out")
    data.column("id").combine_chunks().validate(full=True)  # raises on invalid UTF-8
    assert result.stats["quarantined"] == 1
