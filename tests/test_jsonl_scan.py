"""The screen's compiled pass finds what its Python definition finds, at every alignment: both
its builds, the C one made at install (`_jsonl_scan.c`) and numba's."""

from __future__ import annotations

import bisect
import os
import random
import re
import shutil
from collections.abc import Callable

import numpy as np
import pytest

from siftline.io import jsonl_scan
from siftline.io.jsonl_scan import scan_block, scan_block_numba

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


Scan = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@pytest.fixture(params=["compiled", "numba"])
def scan(request: pytest.FixtureRequest) -> Scan:
    if request.param == "compiled" and jsonl_scan.compiled is None:
        pytest.skip("installed without a C compiler: only numba's build is there")
    return scan_block if request.param == "compiled" else scan_block_numba


def scanned(scan: Scan, block: bytes, offset: int, depth_limit: int
            ) -> tuple[list[int], list[bool]]:
    """`scan` on the block placed `offset` bytes into an aligned buffer."""
    buffer = np.zeros(len(block) + offset + 8, np.uint8)
    arr = buffer[offset : offset + len(block)]
    arr[:] = np.frombuffer(block, np.uint8)
    ends, flagged = scan(arr, depth_limit)
    return ends.tolist(), flagged.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_random_blocks_match_the_definition(scan: Scan, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        block = b"".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 300)))
        limit = rng.choice([1, 3, 500])
        for offset in range(8):
            assert scanned(scan, block, offset, limit) == definition(block, limit), (block, offset)


def test_more_lines_than_the_first_guess(scan: Scan) -> None:
    """Lines of a byte or two: the line arrays grow, every end is kept."""
    rng = random.Random(5)
    block = b"".join(rng.choice([b"\n", b"{\n", b"I\n", b"Inf,\n"]) for _ in range(50_000))
    assert scanned(scan, block, 3, 2) == definition(block, 2)


def test_prose_lines(scan: Scan) -> None:
    line = b'{"text": "' + b"a quiet line of prose, with words. " * 60 + b'"}\n'
    block = line * 300 + b'{"text": "Inf", "x": -NaN }\n' + line
    ends, flagged = scanned(scan, block, 0, 500)
    assert ends == definition(block, 500)[0]
    assert [i for i, f in enumerate(flagged) if f] == [300]


def test_compiled_scan_refuses_arrays_without_room() -> None:
    if jsonl_scan.compiled is None:
        pytest.skip("installed without a C compiler")
    ends, flagged = np.empty(1, np.int64), np.empty(1, np.bool_)
    with pytest.raises(ValueError, match="more lines than room"):
        jsonl_scan.compiled.scan_lines(b"{}\n{}\n", 500, ends, flagged)


def test_numba_builds_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from siftline import c_kernels

    monkeypatch.setenv(c_kernels.ENV, "numba")
    assert c_kernels.load("siftline.io._jsonl_scan") is None
    monkeypatch.setenv(c_kernels.ENV, "")
    assert c_kernels.load("siftline.io._no_such_build") is None


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler: the install skips the compiled builds")
def test_compiled_builds_exist_where_a_compiler_does() -> None:
    """The install builds them as optional extensions: one that failed to compile would
    otherwise go unnoticed, each process quietly paying numba's start-up instead."""
    from siftline import c_kernels
    from siftline.dedupe import normalize
    from siftline.io import jsonl_compiled

    rebuild = "not built: `pip install -e .` builds them (its log says why one failed)"
    if os.environ.get(c_kernels.ENV, "").strip().lower() == "numba":
        pytest.skip(f"{c_kernels.ENV}=numba asks for numba's builds")
    assert jsonl_scan.compiled is not None, rebuild
    assert normalize.compiled is not None, rebuild
    assert jsonl_compiled.compiled is not None, rebuild
