"""Exact dedupe: the normalisation matches its Python definition, the shuffle is exact."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from siftline.dedupe import normalize
from siftline.dedupe.exact import bucket_keys, duplicates_in_bucket
from siftline.dedupe.normalize import normalized_hashes
from siftline.documents import add_local_reasons, from_records
from siftline.stages.exact_dedupe import ExactHash

WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\u00a0", "\u2003", "\u3000",
              "\u2028", "\u2029", "\u202f", "\u205f", "\u1680", "\u0085"]


def reference_hash(text: str) -> bytes:
    """The definition: NFC, then Python's own whitespace split and single-space join."""
    return xxhash.xxh3_128_digest(" ".join(unicodedata.normalize("NFC", text).split()).encode())


def random_text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(0, 12)):
        pieces.append(rng.choice(["a", "bc", "é", "e\u0301", "naïve", "日本", "x"]))
        pieces.append("".join(rng.choice(WHITESPACE) for _ in range(rng.randint(0, 3))))
    return "".join(pieces)


@pytest.fixture(params=["compiled", "numba"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which build of the collapse kernel `normalized_hashes` runs: the C one made at install
    (`_whitespace.c`) or numba's."""
    if request.param == "numba":
        monkeypatch.setattr(normalize, "compiled", None)
    elif normalize.compiled is None:
        pytest.skip("installed without a C compiler: only numba's build is there")
    return request.param


@pytest.mark.usefixtures("kernel")
def test_hash_equals_python_definition_on_random_text() -> None:
    rng = random.Random(7)
    texts = [random_text(rng) for _ in range(2000)] + ["", " ", "\u00a0\u3000"]
    assert normalized_hashes(pa.array(texts)).to_pylist() == [reference_hash(t) for t in texts]


@pytest.mark.usefixtures("kernel")
def test_hash_equals_python_definition_at_every_alignment() -> None:
    """Long ASCII runs take the eight-byte path; spaces and controls at every offset of a word
    (and at the documents' edges) must make it fall back exactly where they should."""
    rng = random.Random(11)
    words = ["a", "bc", "def", "ghijklm", "nopqrstuvwxyz", "0123456789", "café", "x\u2003y"]
    texts = []
    for _ in range(3000):
        pieces = [rng.choice(WHITESPACE[:2]) * rng.randint(0, 2)]
        for _ in range(rng.randint(1, 10)):
            pieces.append(rng.choice(words))
            pieces.append(rng.choice([" ", " ", " ", "  ", "\n", " \t", "\x1f", "\u00a0"]))
        texts.append("".join(pieces)[: rng.randint(0, 80)])
    assert normalized_hashes(pa.array(texts)).to_pylist() == [reference_hash(t) for t in texts]


@pytest.mark.usefixtures("kernel")
def test_hash_handles_chunked_and_sliced_input() -> None:
    texts = ["a  b", "c", " d ", "e\tf"]
    chunked = pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])])
    assert normalized_hashes(chunked).to_pylist() == [reference_hash(t) for t in texts]
    sliced = pa.array(["zz"] + texts).slice(1)
    assert normalized_hashes(sliced).to_pylist() == [reference_hash(t) for t in texts]
    assert normalized_hashes(pa.array([], pa.string())).to_pylist() == []


def test_compiled_collapse_refuses_offsets_past_its_buffers() -> None:
    """The C build checks the offsets before its loop runs unchecked over them."""
    if normalize.compiled is None:
        pytest.skip("installed without a C compiler")
    table, data = np.zeros(16, np.uint8), np.frombuffer(b"ab cd", np.uint8)
    out, out_offsets, suspect = np.empty(5, np.uint8), np.empty(2, np.int64), np.zeros(1, bool)
    for offsets in ([0, 9], [3, 1]):  # past the data; decreasing
        with pytest.raises(ValueError, match="do not match the offsets"):
            normalize.compiled.collapse(data, np.array(offsets, np.int64), out, out_offsets,
                                           table, suspect)
    normalize.compiled.collapse(data, np.array([0, 5], np.int64), out, out_offsets, table,
                                   suspect)
    assert bytes(out[: out_offsets[1]]) == b"ab cd"


@pytest.mark.usefixtures("kernel")
def test_normalisation_equates_whitespace_and_unicode_forms() -> None:
    hashes = normalized_hashes(pa.array(["café  au\nlait", "cafe\u0301 au lait ", "cafe au lait"]))
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]


def _scored(records: list[dict]) -> pa.Table:
    return ExactHash()(add_local_reasons(from_records(records), 1000))


def test_nfc_table_is_saved_once_and_rebuilt_when_torn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table each process loads is the one it would build, whatever the file holds."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    built = normalize._build_nfc_suspects()
    saved = normalize._suspects_file()
    loads = []
    for content in (None, b"", b"\x93NUMPY torn", None):
        if content is not None:
            saved.write_bytes(content)
        normalize._nfc_suspects.cache_clear()
        loads.append(normalize._nfc_suspects())
        assert np.array_equal(np.load(saved), built)
    normalize._nfc_suspects.cache_clear()
    assert all(np.array_equal(table, built) for table in loads)
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary left


@pytest.mark.parametrize("buckets", [1, 3, 16])
def test_smallest_id_is_kept_whatever_the_bucket_count(buckets: int) -> None:
    records = [
        {"id": "b", "text": "same text"},
        {"id": "a", "text": "same  text"},
        {"id": "c", "text": "other"},
        {"id": "d", "text": "same text\n"},
        {"id": "e", "text": "   "},
        {"id": "f", "text": " "},
    ]
    table = _scored(records)
    keys = pa.concat_tables(bucket_keys(table, 0, buckets))
    assert keys.num_rows == 4, "empty rows are already dropped and never reach the shuffle"
    dups = pa.concat_tables(
        [duplicates_in_bucket(pa.concat_tables([b])) for b in bucket_keys(table, 0, buckets)]
    ).sort_by("row")
    assert dups.to_pylist() == [
        {"part": 0, "row": 0, "exact_rep": "a"},
        {"part": 0, "row": 3, "exact_rep": "a"},
    ]


def test_duplicates_across_parts_keep_the_global_smallest_id() -> None:
    part0 = _scored([{"id": "z", "text": "shared"}, {"id": "y", "text": "only here"}])
    part1 = _scored([{"id": "m", "text": "shared"}, {"id": "a", "text": "shared "}])
    keys = pa.concat_tables(bucket_keys(part0, 0, 2) + bucket_keys(part1, 1, 2))
    dups = duplicates_in_bucket(keys).to_pylist()
    assert dups == [
        {"part": 0, "row": 0, "exact_rep": "a"},
        {"part": 1, "row": 0, "exact_rep": "a"},
    ]


def test_duplicates_in_bucket_match_a_brute_force_reference() -> None:
    """Random keys, hashes drawn from a small pool (some share their first 8 bytes): every
    row whose hash has a smaller (id, part, row) elsewhere is a duplicate of the smallest."""
    rng = np.random.default_rng(5)
    pool = [bytes(8) + bytes([k]) * 8 for k in range(6)]  # same leading word, other second
    pool += [rng.bytes(16) for _ in range(40)]
    n = 700
    hashes = [pool[k] for k in rng.integers(0, len(pool), n)]
    ids = [f"doc-{k}" for k in rng.integers(0, 300, n)]  # ids repeat across parts too
    keys = pa.table({"hash": pa.array(hashes, pa.binary(16)), "id": ids,
                     "part": pa.array(rng.integers(0, 4, n), pa.int32()),
                     "row": pa.array(np.arange(n), pa.int64())})
    keys = pa.concat_tables([keys.slice(0, 250), keys.slice(250)])  # chunked, as gathered
    expected = {}
    rows = keys.to_pylist()
    for h in {r["hash"] for r in rows}:
        group = sorted((r["id"], r["part"], r["row"]) for r in rows if r["hash"] == h)
        for _, part, row in group[1:]:
            expected[(part, row)] = group[0][0]
    dups = duplicates_in_bucket(keys).to_pylist()
    assert {(d["part"], d["row"]): d["exact_rep"] for d in dups} == expected
    assert [(d["part"], d["row"]) for d in dups] == sorted(expected)
    assert duplicates_in_bucket(keys.slice(0, 0)).num_rows == 0


def test_stage_adds_a_column_and_never_drops_rows() -> None:
    table = add_local_reasons(from_records([{"text": "x"}, {"text": ""}]), 1000)
    out = ExactHash()(table)
    assert out.num_rows == table.num_rows
    assert out.column_names == [*table.column_names, "exact_hash"]
