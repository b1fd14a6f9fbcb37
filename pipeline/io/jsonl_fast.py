"""JSON Lines through pyarrow's reader, a block of lines per call, with the line path's output.

`pyarrow.json.read_json` is about 4x faster than `json.loads` per line but laxer and coarser:
it skips whitespace between values (so it can read two values from one line, or one value
from two), accepts `Inf` and `-NaN`, ignores invalid UTF-8 outside the fields it returns, and
one bad line fails its whole call. So `screen` sends a line to pyarrow only when its bytes
prove it holds one JSON object that `json.loads` would read the same way, and `FastJsonl`
keeps a row only when pyarrow's values are provably `parse_line`'s. Every other line comes
back as a `SlowLine` for the line-by-line path, which writes its row or reject as before.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from siftline.config import FieldMap
from siftline.documents import UNKNOWN_DOMAIN
from siftline.io.jsonl_scan import scan_block

BLANK, FAST, SLOW = 0, 1, 2
# A pyarrow call costs ~0.3 ms more than its bytes, a failed one ~1.5 ms in all, and pyarrow
# saves ~10 ms per MB over the line path; so short ranges go line by line, and a block stops
# trying pyarrow once its failures outrun the bytes pyarrow read.
MIN_LINES = 32
MAX_FAILURES = 4  # failed reads a block may always have; one more per BYTES_PER_FAILURE read
BYTES_PER_FAILURE = 128 << 10
WINDOW_LINES = 256  # lines per read after a failed one (doubling with each good read)
_ROW_HINT = re.compile(r"in row (\d+)")
_NULL_TOKEN = re.compile(rb"null")
_NULL = pa.scalar(None, pa.string())


@dataclass
class Rows:
    """Documents read by pyarrow, already in the document model (valid UTF-8, no nulls)."""

    ids: pa.Array
    texts: pa.Array
    domains: pa.Array


@dataclass
class SlowLine:
    """A line for the line-by-line path: its offset, 1-based number within the split, bytes."""

    offset: int
    line: int
    raw: bytes | None  # None: a line over MAX_LINE_BYTES, not read


# -- screening: which lines may go to pyarrow -------------------------------------------------
@dataclass
class Lines:
    starts: np.ndarray  # offset of each line in the block
    ends: np.ndarray  # offset of its newline (or of the block's end)
    kinds: np.ndarray  # BLANK (skipped by both parsers), FAST or SLOW

    def mark(self, positions: np.ndarray) -> None:
        """Make the FAST lines that hold these byte positions SLOW."""
        if len(positions):
            hit = np.searchsorted(self.starts, positions, side="right") - 1
            self.kinds[hit] = np.where(self.kinds[hit] == FAST, SLOW, self.kinds[hit])


def screen(block: bytes) -> Lines:
    """FAST: starts with `{` and ends with `}` (or `}\r`). A newline between two such lines is
    never inside a JSON value (no string holds a raw newline; `}` then `{` is valid only
    between top-level values), so pyarrow reads each line on its own, as one row or more. A
    FAST line is also valid UTF-8, free of pyarrow's extra numbers and not deep enough to make
    `json.loads` raise RecursionError. BLANK: empty or JSON whitespace only; both parsers skip
    it. SLOW: everything else."""
    arr = np.frombuffer(block, np.uint8)
    ends, flagged = scan_block(arr, sys.getrecursionlimit() // 2)
    starts = np.zeros_like(ends)
    starts[1:] = ends[:-1] + 1
    size = ends - starts
    last, before = arr[ends - 1], arr[np.maximum(ends - 2, 0)]
    closed = (last == 125) | ((last == 13) & (before == 125) & (size > 2))
    shaped = (size > 1) & (arr[np.minimum(starts, len(arr) - 1)] == 123) & closed
    lines = Lines(starts, ends, np.where(shaped & ~flagged, FAST,
                                         np.where(size > 0, SLOW, BLANK)))
    for i in np.flatnonzero(lines.kinds == SLOW).tolist():
        if not block[starts[i] : ends[i]].strip(b" \t\r"):
            lines.kinds[i] = BLANK
    _mark_invalid_utf8(block, lines)
    lines.mark(_long_integers(block, arr))
    return lines


def _long_integers(block: bytes, arr: np.ndarray) -> np.ndarray:
    """Where `json.loads` may meet an integer over `sys.get_int_max_str_digits()` digits and
    raise ValueError (uncaught by the line path); pyarrow reads it. Such a run of digits holds
    two bytes `step` apart at multiples of `step`, so sampling those finds every candidate."""
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    step = (limit + 1) // 2
    if not limit or len(arr) < 2 * step:
        return np.zeros(0, np.int64)
    sampled = arr[::step]
    digit = (sampled >= 48) & (sampled <= 57)
    pairs = np.flatnonzero(digit[:-1] & digit[1:]) * step
    long_run = re.compile(rb"[0-9]{%d}" % (limit + 1))
    return np.array(
        [p for p in pairs.tolist() if long_run.search(block, max(p - limit, 0), p + step + limit)],
        np.int64,
    )


def _valid(array: pa.Array) -> bool:
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _mark_invalid_utf8(block: bytes, lines: Lines) -> None:
    """pyarrow validates the whole block at once; only if that fails is it done per line."""
    offsets = pa.array([0, len(block)], pa.int32()).buffers()[1]
    whole = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(block)])
    if _valid(whole):
        return
    for i in np.flatnonzero(lines.kinds == FAST).tolist():
        try:
            block[lines.starts[i] : lines.ends[i]].decode("utf-8")
        except UnicodeDecodeError:
            lines.kinds[i] = SLOW


# -- reading: pyarrow for FAST lines, with its values checked ---------------------------------
@dataclass
class _Fast:
    """A block's FAST lines in one buffer (joined around the SLOW lines, if there are any)."""

    buf: pa.Buffer
    starts: np.ndarray  # of each line in `buf`
    ends: np.ndarray
    lines: np.ndarray  # its index in the block

    @classmethod
    def of(cls, block: bytes, lines: Lines) -> _Fast:
        idx = np.flatnonzero(lines.kinds == FAST)
        starts, ends = lines.starts[idx], lines.ends[idx]
        slow = np.flatnonzero(lines.kinds == SLOW)
        if not len(slow) or not len(idx):
            return cls(pa.py_buffer(block), starts, ends, idx)
        run = np.searchsorted(slow, idx)  # runs of FAST lines between SLOW ones
        first = np.flatnonzero(np.diff(run, prepend=-1))
        last = np.append(first[1:], len(idx)) - 1
        lo, hi = starts[first], ends[last]
        view = memoryview(block)
        data = b"\n".join([view[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])
        moved = np.concatenate(([0], np.cumsum(hi - lo + 1)[:-1])) - lo
        shift = np.repeat(moved, np.diff(np.append(first, len(idx))))
        return cls(pa.py_buffer(data), starts + shift, ends + shift, idx)


class FastJsonl:
    """Reads one split's blocks; `fallbacks` counts the lines handed back as SlowLine."""

    def __init__(self, fields: FieldMap, source: str, path_domain: str | None) -> None:
        self.paths = {"text": fields.text, "id": fields.id}
        if path_domain is None:
            self.paths["domain"] = fields.domain
        self.source = source
        self.path_domain = path_domain or UNKNOWN_DOMAIN  # used only when it is not None
        self.id_type: pa.DataType = pa.string()  # or int64; the type that last worked
        self.fallbacks = 0

    @staticmethod
    def usable(fields: FieldMap, path_domain: str | None) -> bool:
        """False when no explicit schema mirrors `lookup`: a path inside another, or empty."""
        paths = [fields.text, fields.id] + ([fields.domain] if path_domain is None else [])
        pairs = [(a, b) for i, a in enumerate(paths) for j, b in enumerate(paths) if i != j]
        clash = any(a == b or b.startswith(a + ".") for a, b in pairs)
        return not clash and all(all(p.split(".")) for p in paths)

    def block(
        self, block: bytes, offset: int, line0: int
    ) -> tuple[int, Iterator[Rows | SlowLine]]:
        """How many lines the block holds, and its documents and slow lines in file order;
        `line0` lines of the split come before it."""
        lines = screen(block)
        return len(lines.starts), self._items(block, lines, offset, line0)

    def _items(
        self, block: bytes, lines: Lines, offset: int, line0: int
    ) -> Iterator[Rows | SlowLine]:
        fast = _Fast.of(block, lines)
        done = np.zeros(len(fast.lines), bool)  # the FAST lines pyarrow's rows stand for
        parts: list[Rows] = []
        for lo, hi, table in self._tables(fast):
            rows, ok = self._rows(table, block, lines, fast.lines[lo:hi], offset)
            done[lo:hi] = ok
            parts.append(rows if ok.all() else _take(rows, ok))
        good = fast.lines[done]
        slow = lines.kinds != BLANK
        slow[good] = False
        slow_lines = np.flatnonzero(slow)
        self.fallbacks += len(slow_lines)
        yield from in_file_order(_concat(parts), good, slow_lines, lines, block, offset, line0)

    def _tables(self, fast: _Fast) -> Iterator[tuple[int, int, pa.Table]]:
        """pyarrow's tables for ranges of FAST lines, in order. After a failed read, a row
        whose id has the other type starts a range read with that type; another row pyarrow
        names is left out; with no row named, the range is halved. Ranges under MIN_LINES, and
        all once the block's failures outrun its reads, are left to the line path."""
        todo = [(0, len(fast.lines), self.id_type, False)]
        failures = read = 0
        window = len(fast.lines)  # lines per read: all at first, few after a failure
        while todo:
            lo, hi, id_type, flipped = todo.pop()
            if hi - lo < max(MIN_LINES, 1) or failures >= MAX_FAILURES + read // BYTES_PER_FAILURE:
                continue
            if hi - lo > window:  # a failed read costs about as much as its whole buffer
                todo.append((lo + window, hi, id_type, False))
                hi = lo + window
            start, end = int(fast.starts[lo]), int(fast.ends[hi - 1])
            table, row, about_id = self._read(fast.buf.slice(start, end - start), id_type)
            if table is not None and table.num_rows == hi - lo:
                self.id_type = id_type
                read += end - start
                window *= 2
                yield lo, hi, table
                continue
            failures += 1
            window = WINDOW_LINES
            other = pa.int64() if id_type == pa.string() else pa.string()
            if row is None or row >= hi - lo:
                if hi - lo > 1:  # (a single line is left out)
                    mid = (lo + hi) // 2
                    todo += [(mid, hi, id_type, False), (lo, mid, id_type, False)]
            elif about_id and not (row == 0 and flipped):
                todo += [(lo + row, hi, other, True), (lo, lo + row, id_type, False)]
            else:
                todo += [(lo + row + 1, hi, id_type, False), (lo, lo + row, id_type, False)]

    def _read(self, data: pa.Buffer, id_type: pa.DataType) -> tuple[pa.Table | None, int | None,
                                                                    bool]:
        """pyarrow's table, or None, the row its error names and whether it is about the id
        (whose type may differ from row to row: ids may be strings or ints)."""
        try:
            table = pj.read_json(
                pa.BufferReader(data),
                read_options=pj.ReadOptions(use_threads=False, block_size=data.size + 1),
                parse_options=pj.ParseOptions(
                    explicit_schema=_schema(self.paths, id_type),
                    unexpected_field_behavior="ignore",
                    newlines_in_values=False,
                ),
            )
        except pa.ArrowException as exc:  # (ArrowInvalid, or any other: the line path decides)
            message = str(exc)
            match = _ROW_HINT.search(message)
            about_id = "int64" in message or self._id_pointer() in message
            return None, int(match.group(1)) if match else None, about_id
        return table, None, False

    def _id_pointer(self) -> str:
        return "Column(/" + self.paths["id"].replace(".", "/")

    def _rows(
        self, table: pa.Table, block: bytes, lines: Lines, idx: np.ndarray, offset: int
    ) -> tuple[Rows, np.ndarray]:
        """The rows in the document model, and which of them pyarrow vouches for (not: a
        null text, or a dotted path's value that `lookup` may not find; see `_value`)."""
        unsure = np.zeros(len(idx), bool)
        texts = self._value(table, "text", block, lines, idx, unsure)
        unsure |= np.asarray(texts.is_null().to_numpy(zero_copy_only=False), bool)
        ids = self._value(table, "id", block, lines, idx, unsure)
        ids = ids if ids.type == pa.string() else pc.cast(ids, pa.string())
        if ids.null_count:
            offsets = pc.cast(pa.array(lines.starts[idx] + offset), pa.string())
            ids = pc.coalesce(ids, pc.binary_join_element_wise(f"{self.source}:", offsets, ""))
        if "domain" not in self.paths:
            domains = pc.fill_null(pa.nulls(len(idx), pa.string()), self.path_domain)
        else:
            domains = self._value(table, "domain", block, lines, idx, unsure)
            domains = pc.if_else(pc.equal(domains, ""), _NULL, domains)
            domains = pc.fill_null(domains, UNKNOWN_DOMAIN)
        return Rows(ids, texts, domains), ~unsure

    def _value(
        self, table: pa.Table, key: str, block: bytes, lines: Lines, idx: np.ndarray,
        unsure: np.ndarray,
    ) -> pa.Array:
        """The field's values as `lookup` finds them. A dotted path is read both as a literal
        key and nested; where the literal is null and the nested value is not, the literal key
        may be present as `null` (then `lookup` stops there), so such a row whose line holds
        `null` is marked unsure."""
        path = self.paths[key]
        values = _array(table.column(path))
        if "." not in path:
            return values
        parts = path.split(".")
        nested = pc.struct_field(_array(table.column(parts[0])), parts[1:])
        hidden = pc.and_(values.is_null(), nested.is_valid()).to_numpy(zero_copy_only=False)
        if hidden.any():
            nulls = [m.start() for m in _NULL_TOKEN.finditer(block)]
            null_lines = np.searchsorted(lines.starts, nulls, side="right") - 1
            unsure |= hidden & np.isin(idx, null_lines)
        return pc.coalesce(values, nested)


def in_file_order(
    rows: Rows, good: np.ndarray, slow_lines: np.ndarray, lines: Lines, block: bytes,
    offset: int, line0: int,
) -> Iterator[Rows | SlowLine]:
    """The block's rows (those of lines `good`, ascending) cut around its slow lines, which
    come as SlowLine: the order the line path would write them in."""
    starts, ends = lines.starts.tolist(), lines.ends.tolist()
    lo = 0
    for line, cut in zip(slow_lines.tolist(), np.searchsorted(good, slow_lines).tolist(),
                         strict=True):
        if cut > lo:
            yield _slice(rows, lo, cut)
        start, end = starts[line], ends[line]
        yield SlowLine(offset + start, line0 + line + 1, block[start:end])
        lo = cut
    if lo < len(good):
        yield _slice(rows, lo, len(good))


def _slice(rows: Rows, lo: int, hi: int) -> Rows:
    return Rows(rows.ids[lo:hi], rows.texts[lo:hi], rows.domains[lo:hi])


def _take(rows: Rows, keep: np.ndarray) -> Rows:
    mask = pa.array(keep)
    return Rows(rows.ids.filter(mask), rows.texts.filter(mask), rows.domains.filter(mask))


def _concat(parts: list[Rows]) -> Rows:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Rows(*(pa.array([], pa.string()) for _ in range(3)))
    return Rows(*(pa.concat_arrays([getattr(p, c) for p in parts]) for c in ("ids", "texts",
                                                                            "domains")))


def _array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array; pyarrow gives one chunk per call, which is then not copied."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _schema(paths: dict[str, str], id_type: pa.DataType) -> pa.Schema:
    """Only the needed fields; a dotted path both as nested structs and as a literal key."""
    tree: dict[str, object] = {}
    for key, path in paths.items():
        leaf = id_type if key == "id" else pa.string()
        tree[path] = leaf
        if "." in path:
            node = tree
            *parents, name = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})  # type: ignore[assignment]
            node[name] = leaf
    return pa.schema(_fields(tree))


def _fields(tree: dict[str, object]) -> list[pa.Field]:
    return [
        pa.field(name, pa.struct(_fields(node)) if isinstance(node, dict) else node)
        for name, node in tree.items()
    ]
