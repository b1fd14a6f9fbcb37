"""The screen's compiled pass finds what its Python definition finds, at every alignment."""

from __future__ import annotations

import bisect
import random
import re

import numpy as np
import pytest

from pipeline.io.jsonl_scan import scan_block

ARROW_ONLY = re.compile(rb"(?:Inf|-NaN)[ \t\r\n]*[,}\]]")  # pyarrow reads these, json.loads not
ATOMS = [b"{", b"}", b"[", b"]", b"Inf", b"-NaN", b"NaN", b"-Inf", b" ", b"\n", b"\r", b"\t",
         b",", b"I", b"N", b"-", b"nf", b"aN", b'"text"', b"abcdefghijklmnop", "é—".encode()]


def definition(block: bytes, depth_limit: int) -> tuple[list[int], list[bool]]:
    """Each line's end, and whether an `Inf`/`-NaN` starts in it or it has `depth_limit`
    brackets or more."""
    odd = [p for p in range(len(block)) if ARROW_ONLY.match(block, p)]
    ends, flagged, start = [], [], 0
    while start < len(block):
        end = block.find(b"\n", start)
        end = len(block) if end < 0 else end
        line = block[start:end]
        ends.append(end)
        first_odd = bisect.bisect_left(odd, start)
        flagged.append(line.count(b"{") + line.count(b"[") >= depth_limit
                       or (first_odd < len(odd) and odd[first_odd] <= end))
        start = end + 1
    return ends, flagged


def scanned(block: bytes, offset: int, depth_limit: int) -> tuple[list[int], list[bool]]:
    """`scan_block` on the block placed `offset` bytes into an aligned buffer."""
    buffer = np.zeros(len(block) + offset + 8, np.uint8)
    arr = buffer[offset : offset + len(block)]
    arr[:] = np.frombuffer(block, np.uint8)
    ends, flagged = scan_block(arr, depth_limit)
    return ends.tolist(), flagged.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_random_blocks_match_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        block = b"".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 120)))
        limit = rng.choice([1, 3, 500])
        for offset in range(8):
            assert scanned(block, offset, limit) == definition(block, limit), (block, offset)


def test_more_lines_than_the_first_guess() -> None:
    """Lines of a byte or two: the line arrays grow, every end is kept."""
    rng = random.Random(5)
    block = b"".join(rng.choice([b"\n", b"{\n", b"I\n", b"Inf,\n"]) for _ in range(50_000))
    assert scanned(block, 3, 2) == definition(block, 2)


def test_prose_lines() -> None:
    line = b'{"text": "' + b"a quiet line of prose, with words. " * 60 + b'"}\n'
    block = line * 300 + b'{"text": "Inf", "x": -NaN }\n' + line
    ends, flagged = scanned(block, 0, 500)
    assert ends == definition(block, 500)[0]
    assert [i for i, f in enumerate(flagged) if f] == [300]
