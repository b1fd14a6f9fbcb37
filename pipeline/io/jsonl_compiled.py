"""JSON Lines through the compiled one-pass parser (`_jsonl_parse.c`), a block per call.

For the common shape, wanted keys at the top level of a flat object, it does in one pass what
`jsonl_fast` does with a screen, pyarrow's reader and checks of its values: each line it can
vouch for goes straight into Arrow string buffers, and every other line comes back as a
`SlowLine` for the line path, which writes its row or reject. The rows and rejects are the
line path's either way (tests/test_jsonl_compiled.py). Where it was not built (no C compiler,
or `SIFTLINE_KERNELS=numba`), or the field map uses dotted paths, `FastJsonl` serves.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.c_kernels import load
from siftline.config import FieldMap
from siftline.documents import UNKNOWN_DOMAIN
from siftline.io.jsonl_fast import FAST, SLOW, FastJsonl, Lines, Rows, SlowLine, in_file_order
from siftline.io.jsonl_scan import compiled as scan_compiled

compiled = load("siftline.io._jsonl_parse")
ID_DIGITS = 24  # room the parser keeps for a line's offset in a default id


class CompiledJsonl:
    """Reads one split's blocks; `fallbacks` counts the lines handed back as SlowLine."""

    def __init__(self, fields: FieldMap, source: str, path_domain: str | None) -> None:
        self.keys = (fields.text.encode(), fields.id.encode(), fields.domain.encode())
        self.path_domain = path_domain
        self.prefix = f"{source}:".encode()
        self.depth_limit = sys.getrecursionlimit() // 2  # as `jsonl_fast.screen`'s
        self.fallbacks = 0

    @staticmethod
    def usable(fields: FieldMap, path_domain: str | None) -> bool:
        """Built, and every field read is a distinct top-level key."""
        keys = [fields.text, fields.id] + ([fields.domain] if path_domain is None else [])
        return (compiled is not None and FastJsonl.usable(fields, path_domain)
                and not any("." in key for key in keys))

    def block(
        self, block: bytes, offset: int, line0: int
    ) -> tuple[int, Iterator[Rows | SlowLine]]:
        """How many lines the block holds, and its documents and slow lines in file order;
        `line0` lines of the split come before it."""
        capacity = _newlines(block) + 1  # room for every line, a last one without newline too
        read_domain = self.path_domain is None
        size = len(block)
        kinds, ends = np.empty(capacity, np.uint8), np.empty(capacity, np.int64)
        text = (np.empty(max(size, 1), np.uint8), np.empty(capacity + 1, np.int32))
        ids = (np.empty(size + capacity * (len(self.prefix) + ID_DIGITS), np.uint8),
               np.empty(capacity + 1, np.int32))
        domains = ((np.empty(size + capacity * len(UNKNOWN_DOMAIN), np.uint8),
                    np.empty(capacity + 1, np.int32)) if read_domain
                   else (np.empty(0, np.uint8), np.empty(1, np.int32)))
        count, rows, *used = compiled.parse_block(
            block, *self.keys, read_domain, self.depth_limit, self.prefix, offset,
            UNKNOWN_DOMAIN.encode(), kinds, ends, *text, *ids, *domains)
        kinds, ends = kinds[:count], ends[:count]
        texts = _strings(*text, rows, used[0], copy=False)
        if read_domain:
            domain_array = _strings(*domains, rows, used[2], copy=True)
        else:
            domain_array = pc.fill_null(pa.nulls(rows, pa.string()), self.path_domain)
        parsed = Rows(_strings(*ids, rows, used[1], copy=True), texts, domain_array)
        starts = np.zeros_like(ends)
        starts[1:] = ends[:-1] + 1
        slow_lines = np.flatnonzero(kinds == SLOW)
        self.fallbacks += len(slow_lines)
        lines = Lines(starts, ends, kinds)
        return count, in_file_order(parsed, np.flatnonzero(kinds == FAST), slow_lines, lines,
                                    block, offset, line0)


def _newlines(block: bytes) -> int:
    """memchr in C where the line scan was built (~10x faster than bytes.count here)."""
    return scan_compiled.count_newlines(block) if scan_compiled else block.count(b"\n")


def _strings(data: np.ndarray, offsets: np.ndarray, rows: int, used: int,
             copy: bool) -> pa.Array:
    """An Arrow string array over the parser's buffers (copied to size when they are mostly
    spare room, as the id and domain buffers are)."""
    data, offsets = data[:used], offsets[: rows + 1]
    if copy:
        data, offsets = data.copy(), offsets.copy()
    return pa.Array.from_buffers(pa.string(), rows,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])
