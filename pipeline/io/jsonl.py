"""JSON Lines parsing with quarantine: every line becomes a document row or a reject.

Parsing goes line by line through the C `json` module, which on this machine is as fast as
pyarrow's JSON reader and, unlike it, lets one bad line be quarantined without losing its block.
Ids default to `source:byte_offset` — stable however the file is split into tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from siftline.config import FieldMap
from siftline.documents import UNKNOWN_DOMAIN

BLOCK_BYTES = 8 << 20
MAX_LINE_BYTES = 256 << 20
RAW_PREVIEW = 500


@dataclass
class Reject:
    """A quarantined record: where it was, what went wrong, and a preview of the raw bytes."""

    source: str
    error: str
    byte_offset: int | None = None
    line: int | None = None
    row: int | None = None
    raw: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def iter_lines(
    stream: IO[bytes], start: int, end: int | None
) -> Iterator[tuple[int, bytes | None]]:
    """Yield (byte_offset, line) for lines that start in [start, end), `end=None` meaning EOF.

    `stream` must be positioned at `max(start - 1, 0)`: when start > 0 the text up to the first
    newline belongs to the previous split, and a line starting exactly at `start` is recognised
    by the newline just before it. A line over MAX_LINE_BYTES is yielded as None (skipped, not
    buffered), so one runaway line cannot exhaust a worker's memory.
    """
    base = max(start - 1, 0)  # absolute offset of the block being scanned
    line_start = base
    parts: list[bytes] = []
    size = 0
    overflow = False
    skip_first = start > 0
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            break
        lo = 0
        while (nl := block.find(b"\n", lo)) >= 0:
            if skip_first:
                skip_first = False
            elif end is not None and line_start >= end:
                return
            else:
                yield line_start, None if overflow else b"".join(parts) + block[lo:nl]
            line_start = base + nl + 1
            parts, size, overflow = [], 0, False
            lo = nl + 1
        if not overflow and lo < len(block):
            parts.append(block[lo:])
            size += len(block) - lo
            if size > MAX_LINE_BYTES:
                parts, size, overflow = [], 0, True
        base += len(block)
        if end is not None and not skip_first and line_start >= end:
            return
    if not skip_first and (parts or overflow) and (end is None or line_start < end):
        yield line_start, None if overflow else b"".join(parts)


def iter_blocks(
    stream: IO[bytes], start: int, end: int | None
) -> Iterator[tuple[int, bytes | None]]:
    """Yield (byte_offset, block): runs of the same lines `iter_lines` yields, whole and in order.

    A block holds complete lines, each ending in a newline except a last line at EOF; an
    overlong line comes alone as None, exactly where `iter_lines` would yield it (chunks are
    read from the same position in BLOCK_BYTES, so the overflow test sees the same sizes).
    Blocks let a caller parse many lines per call instead of one.
    """
    base = max(start - 1, 0)  # absolute offset of the next chunk
    head = base  # absolute offset of the unfinished line held in `parts`
    parts: list[bytes] = []
    size = 0
    overflow = False
    skip_first = start > 0
    while chunk := stream.read(BLOCK_BYTES):
        first = chunk.find(b"\n")
        if first >= 0:
            last = chunk.rfind(b"\n")
            if skip_first:
                skip_first = False
                block_at, block = base + first + 1, chunk[first + 1 : last + 1]
            elif overflow:
                if end is not None and head >= end:
                    return
                yield head, None
                block_at, block = base + first + 1, chunk[first + 1 : last + 1]
            else:  # (a memoryview, so the chunk is copied once, not twice)
                block_at, block = head, b"".join([*parts, memoryview(chunk)[: last + 1]])
            block, done = _owned(block, block_at, end)
            if block:
                yield block_at, block
            if done:
                return
            head, parts, size, overflow = base + last + 1, [], 0, False
            first = last + 1  # the unfinished tail of this chunk starts a new line
        else:
            first = 0
        if not overflow and first < len(chunk):
            parts.append(chunk[first:])
            size += len(chunk) - first
            if size > MAX_LINE_BYTES:
                parts, size, overflow = [], 0, True
        base += len(chunk)
    if not skip_first and (parts or overflow) and (end is None or head < end):
        yield head, None if overflow else b"".join(parts)


def _owned(block: bytes, block_at: int, end: int | None) -> tuple[bytes, bool]:
    """Cut `block` after its last line starting before `end`; True when that ends the split."""
    if end is None or block_at + len(block) < end:
        return block, False
    if block_at >= end:
        return b"", True
    cut = block.find(b"\n", end - 1 - block_at)  # the newline ending the line that holds end-1
    return block[: cut + 1], True


def json_error(exc: json.JSONDecodeError) -> str:
    """A JSON error with its column, read as a sentence: json's messages either end in "at"
    ("Unterminated string starting at") or not ("Expecting value"), and its column is where
    the problem starts (a string's opening quote, not the line's end)."""
    where = "column" if exc.msg.endswith(" at") else "at column"
    return f"invalid JSON: {exc.msg} {where} {exc.colno}"


class RecordError(ValueError):
    """A record that cannot become a document; its message goes to the rejects file."""


def lookup(record: dict[str, Any], dotted: str) -> Any:
    """`metadata.domain` -> record["metadata"]["domain"]; None when any step is missing."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def parse_line(
    raw: bytes, fields: FieldMap, read_domain: bool = True
) -> tuple[str | None, str, str | None]:
    """Decode one line into (id or None, text, domain or None), or raise RecordError."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not valid UTF-8 at byte {exc.start} of the line") from None
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise RecordError(json_error(exc)) from None
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    text = lookup(record, fields.text)
    if text is None:
        present = fields.text in record or lookup(record, fields.text.rsplit(".", 1)[0]) is not None
        problem = "is null" if present and "." not in fields.text else "is missing"
        raise RecordError(f"text field {fields.text!r} {problem}")
    if not isinstance(text, str):
        raise RecordError(f"text field {fields.text!r} is {type(text).__name__}, expected string")
    if "\\u" in decoded and _has_surrogate(text):
        raise RecordError(f"text field {fields.text!r} contains an unpaired UTF-16 surrogate")
    domain = _domain(record, fields.domain) if read_domain else None
    return _scalar_id(lookup(record, fields.id), fields.id), text, domain


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _scalar_id(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"id field {key!r} is {type(value).__name__}, expected string or int")
    if isinstance(value, str) and _has_surrogate(value):
        raise RecordError(f"id field {key!r} contains an unpaired UTF-16 surrogate")
    return str(value)


def _domain(record: dict[str, Any], key: str) -> str | None:
    value = lookup(record, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"domain field {key!r} is {type(value).__name__}, expected string")
    if _has_surrogate(value):
        raise RecordError(f"domain field {key!r} contains an unpaired UTF-16 surrogate")
    return value or None


def line_result(
    raw: bytes | None,
    offset: int,
    line: int | None,
    fields: FieldMap,
    source: str,
    path_domain: str | None,
) -> tuple[str, str, str] | Reject | None:
    """One line's (id, text, domain), its reject, or None for a blank line: what a line of
    a split becomes (raw None: a line over MAX_LINE_BYTES)."""
    if raw is None:
        limit = f"line longer than {MAX_LINE_BYTES:,} bytes; not parsed"
        return Reject(source, limit, offset, line)
    if not raw.strip():
        return None  # blank lines carry no record
    try:
        doc_id, text, domain = parse_line(raw, fields, read_domain=path_domain is None)
    except RecordError as exc:
        preview = raw[:500].decode("utf-8", errors="replace")
        return Reject(source, str(exc), offset, line, raw=preview)
    doc_id = doc_id if doc_id is not None else f"{source}:{offset}"
    return doc_id, text, path_domain or domain or UNKNOWN_DOMAIN
