"""Exact dedupe's text normalisation and hash: Unicode NFC, whitespace runs collapsed.

`normalized_hashes` is the 128-bit xxh3 of each text after it is stripped, every whitespace run
(as `str.split` sees it) turned into one space, and NFC applied. The collapse runs over the
UTF-8 bytes, eight at a time where the text is plain ASCII (numba's build, or its C twin
`_whitespace.c` compiled at install); it flags the rows holding a code point NFC might change
(`_nfc_suspects`), and only those go through Python's normaliser.
"""

from __future__ import annotations

import contextlib
import functools
import os
import unicodedata
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from siftline.c_kernels import load

compiled = load("siftline.dedupe._whitespace")  # the collapse kernel's C build, or numba's

HASH_TYPE = pa.binary(16)

TABLE_LIMIT = 0x30000  # every code point that takes part in canonical composition is below this
_UNICODE_SPACES = (0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F,
                   0x3000)


@functools.cache
def _nfc_suspects() -> np.ndarray:
    """uint8 table over code points: 1 = may change under NFC next to its neighbours.

    A superset of the Unicode NFC_QC No/Maybe sets, built from this Python's `unicodedata`:
    characters NFC changes, combining marks, anything that is a non-first part of a canonical
    decomposition, and the Hangul vowel/trailing jamo. A document with none of them is NFC.
    Building it takes ~200k `unicodedata` calls, so each process loads it from a file beside
    numba's cache (keyed by the Unicode version) once one has written it.
    """
    cached = _suspects_file()
    table = _load_suspects(cached)
    if table is None:
        table = _build_nfc_suspects()
        with contextlib.suppress(OSError):  # a read-only install builds it in every process
            _save_suspects(cached, table)
    return table


def _load_suspects(path: Path) -> np.ndarray | None:
    """The saved table, or None when it is absent, unreadable, torn or of another shape."""
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return table if table.shape == (TABLE_LIMIT,) and table.dtype == np.uint8 else None


def _save_suspects(path: Path, table: np.ndarray) -> None:
    """Whole or not at all: written beside it, then renamed (processes may race to save)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            np.save(handle, table, allow_pickle=False)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _suspects_file() -> Path:
    """Where numba caches this module's kernels: `__pycache__` here, or NUMBA_CACHE_DIR."""
    base = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(__file__).parent / "__pycache__")
    return base / f"nfc_suspects-v1-{unicodedata.unidata_version}-{TABLE_LIMIT:x}.npy"


def _build_nfc_suspects() -> np.ndarray:
    table = np.zeros(TABLE_LIMIT, np.uint8)
    for cp in range(0x80, TABLE_LIMIT):
        if 0xD800 <= cp < 0xE000:
            continue
        char = chr(cp)
        if unicodedata.combining(char) or unicodedata.normalize("NFC", char) != char:
            table[cp] = 1
        decomposition = unicodedata.decomposition(char)
        if decomposition and not decomposition.startswith("<"):
            for part in decomposition.split()[1:]:
                if int(part, 16) < TABLE_LIMIT:
                    table[int(part, 16)] = 1
    table[0x1161:0x1176] = 1
    table[0x11A8:0x11C3] = 1
    table[list(_UNICODE_SPACES)] = 2
    return table


# Byte classes for the collapse kernel's one-byte step: 0 = ASCII non-space, 1 = ASCII space,
# 2 = non-ASCII.
_BYTE_CLASS = np.zeros(256, np.uint8)
_BYTE_CLASS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = 1
_BYTE_CLASS[0x80:] = 2

# Eight bytes at a time (SWAR). Hot loops index with uint64 (U64 constants only: numba turns
# uint64 mixed with int64 into float64) so numba emits no negative-index wraparound code and
# LLVM can merge the byte loads and stores into one 8-byte access each.
U64 = np.uint64
_LOW7, _HIGH, _SPACES = U64(0x7F7F7F7F7F7F7F7F), U64(0x8080808080808080), U64(0x2020202020202020)


@numba.njit(cache=True, nogil=True, inline="always")
def _load64(buf: np.ndarray, p: int) -> int:
    """Little-endian uint64 at buf[p]."""
    return (U64(buf[p]) | (U64(buf[p + U64(1)]) << U64(8)) | (U64(buf[p + U64(2)]) << U64(16))
            | (U64(buf[p + U64(3)]) << U64(24)) | (U64(buf[p + U64(4)]) << U64(32))
            | (U64(buf[p + U64(5)]) << U64(40)) | (U64(buf[p + U64(6)]) << U64(48))
            | (U64(buf[p + U64(7)]) << U64(56)))


@numba.njit(cache=True, nogil=True, inline="always")
def _store64(buf: np.ndarray, p: int, word: int) -> None:
    for k in range(8):
        buf[p + U64(k)] = (word >> U64(8 * k)) & U64(0xFF)


@numba.njit(cache=True, nogil=True, inline="always")
def _plain_word(word: int, prev: int) -> int:
    """0 if the 8 bytes need the one-byte step, else 1 + (is the last byte a space).

    Plain: all ASCII, none a control or whitespace other than ' ', no two spaces side by
    side, and no space right after a space (or the document's start) when `prev` is 1.
    """
    below_space = (word - _SPACES) & ~word & _HIGH  # some byte < 0x20 (exact when all ASCII)
    if (word & _HIGH) | below_space:
        return 0
    x = word ^ _SPACES
    spaces = ~(((x & _LOW7) + _LOW7) | x | _LOW7)  # 0x80 in every byte that is ' '
    if (spaces & (spaces >> U64(8))) or (prev and (spaces & U64(0x80))):
        return 0
    return 1 + (spaces >> U64(63))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _collapse_whitespace(
    data: np.ndarray, offsets: np.ndarray, out: np.ndarray, byte_class: np.ndarray,
    table: np.ndarray, suspect: np.ndarray,
) -> np.ndarray:
    """Strip each string and turn every whitespace run (as `str.split` sees it) into one space.

    Runs of plain ASCII text (single spaces between words) are copied eight bytes at a time;
    everything else takes a one-byte step. There a space is always written, but the output
    position only advances when the previous byte was not a space too. Non-ASCII characters
    are decoded, Unicode spaces recognised, and each string holding a code point NFC might
    change is flagged in `suspect`, so only those need Python's normaliser.
    """
    n = offsets.shape[0] - 1
    out_offsets = np.empty(n + 1, np.int64)
    o = U64(0)
    for d in range(n):
        out_offsets[d] = o
        start = o
        prev = U64(1)  # leading spaces never advance the output
        i = U64(offsets[d])
        end = U64(offsets[d + 1])
        while i < end:
            if i + U64(8) <= end:
                word = _load64(data, i)
                plain = _plain_word(word, prev)
                if plain:
                    _store64(out, o, word)
                    o += U64(8)
                    i += U64(8)
                    prev = U64(plain - 1)
                    continue
            c = data[i]
            cls = U64(byte_class[c])
            if cls == U64(2):
                if c < 0xE0:
                    width = U64(2)
                    cp = ((U64(c) & U64(0x1F)) << U64(6)) | (U64(data[i + U64(1)]) & U64(0x3F))
                elif c < 0xF0:
                    width = U64(3)
                    cp = (((U64(c) & U64(0x0F)) << U64(12))
                          | ((U64(data[i + U64(1)]) & U64(0x3F)) << U64(6))
                          | (U64(data[i + U64(2)]) & U64(0x3F)))
                else:
                    width, cp = U64(4), U64(0x110000)
                kind = table[cp] if cp < U64(table.shape[0]) else 1
                if kind != 2:
                    if kind == 1:
                        suspect[d] = True
                    for k in range(width):
                        out[o + U64(k)] = data[i + U64(k)]
                    o += width
                    prev = U64(0)
                    i += width
                    continue
                cls, c = U64(1), 32
                i += width - U64(1)
            out[o] = 32 if cls else c
            o += U64(1) - (cls & prev)
            prev = cls
            i += U64(1)
        if prev == U64(1) and o > start:
            o -= U64(1)  # the trailing run left one space behind
    out_offsets[n] = o
    return out_offsets


def _collapse(texts: pa.Array) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Collapsed bytes, their offsets, and which rows may not be NFC."""
    large = texts.cast(pa.large_string())
    start = large.offset
    offsets = np.frombuffer(large.buffers()[1], np.int64)[start : start + len(large) + 1]
    data_buf = large.buffers()[2]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    out = np.empty(max(int(offsets[-1] - offsets[0]), 1), np.uint8)
    suspect = np.zeros(len(large), np.bool_)
    if compiled is not None:  # `_whitespace.c`: the same kernel compiled at install
        out_offsets = np.empty(len(large) + 1, np.int64)
        compiled.collapse(data, offsets, out, out_offsets, _nfc_suspects(), suspect)
    else:
        out_offsets = _collapse_whitespace(data, offsets, out, _BYTE_CLASS, _nfc_suspects(),
                                           suspect)
    return out, out_offsets.tolist(), suspect


def nfc_rows(texts: pa.Array, rows: np.ndarray) -> pa.Array:
    """Normalise the given rows to NFC (Python's quick check first: most are already NFC)."""
    fixed_rows, fixed = [], []
    for row, text in zip(rows.tolist(), texts.take(rows).to_pylist(), strict=True):
        if not unicodedata.is_normalized("NFC", text):
            fixed_rows.append(row)
            fixed.append(unicodedata.normalize("NFC", text))
    if not fixed_rows:
        return texts
    mask = np.zeros(len(texts), bool)
    mask[fixed_rows] = True
    return pc.replace_with_mask(texts, pa.array(mask), pa.array(fixed, texts.type))


def normalized_hashes(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """128-bit xxh3 of each text after NFC and whitespace collapsing (fixed_size_binary(16))."""
    if isinstance(texts, pa.ChunkedArray):  # chunk by chunk: the text is not copied
        parts = [normalized_hashes(chunk) for chunk in texts.chunks]
        return pa.concat_arrays(parts) if parts else pa.array([], HASH_TYPE)
    if len(texts) == 0:
        return pa.array([], HASH_TYPE)
    out, out_offsets, suspect = _collapse(texts)
    if suspect.any():
        normalised = nfc_rows(texts, np.flatnonzero(suspect))
        if normalised is not texts:
            out, out_offsets, _ = _collapse(normalised)
    view = memoryview(out)
    digest = xxhash.xxh3_128_digest
    hashes = [digest(view[out_offsets[i] : out_offsets[i + 1]]) for i in range(len(texts))]
    return pa.array(hashes, HASH_TYPE)
