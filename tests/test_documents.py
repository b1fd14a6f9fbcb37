"""The local drop reasons: `empty` is exactly "nothing left after trimming whitespace"."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from siftline.documents import _MAY_START_BLANK, add_local_reasons


def test_every_whitespace_character_starts_with_a_listed_byte() -> None:
    """The blank check trims only rows starting with a listed byte: every code point that
    pyarrow's `utf8_trim_whitespace` trims must start with one."""
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    trimmed = pc.utf8_trim_whitespace(pa.array([chr(c) for c in points]))
    blank = np.asarray(pc.equal(pc.utf8_length(trimmed), 0))
    missed = [hex(c) for c, b in zip(points, blank, strict=True)
              if b and not _MAY_START_BLANK[chr(c).encode()[0]]]
    assert missed == []


def _definition(texts: pa.Array) -> list[bool]:
    return pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0).to_pylist()


@pytest.mark.parametrize("kind", ["plain", "large", "sliced", "chunked"])
def test_empty_reason_matches_its_definition(kind: str) -> None:
    rng = random.Random(3)
    pieces = ["", " ", "\t", "\n", "\u00a0", "\u3000", "\u2003", "\x1c", "a", "é", "日",
              "\u200b", "\ufeff", "x y"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) for _ in range(3000)]
    array = pa.array(texts)
    column: pa.Array | pa.ChunkedArray = {
        "plain": array,
        "large": array.cast(pa.large_string()),
        "sliced": pa.array(["  ", *texts]).slice(1),
        "chunked": pa.chunked_array([array.slice(0, 1000), array.slice(1000)]),
    }[kind]
    table = add_local_reasons(pa.table({"text": column}), 1 << 20)
    empty = [reason == "empty" for reason in table.column("drop_reason").to_pylist()]
    assert empty == _definition(array)
    assert any(empty) and not all(empty)
