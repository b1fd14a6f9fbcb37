"""MinHash signatures of n-gram shingles, value-for-value equal to `datasketch.MinHash`.

A row of `minhash_signatures` equals ``datasketch.MinHash(num_perm, seed, scheme="affine32",
hashfunc=shingle_hash32)`` updated with ``shingles(text)``: the minimum over shingles of
``a_k * fmix32(xxh32(shingle)) + b_k mod 2**32``, with datasketch's (a_k, b_k) for the seed.
So our rows can be queried in datasketch's `MinHashLSH` (see `to_lean_minhash`).

Normalisation (both paths): Unicode NFC, then the simple per-code-point lowercase mapping (like
`str.lower` without its two context rules: "İ" -> "i", "Σ" -> "σ" everywhere), then words are
`str.split()` runs joined by one space. The compiled path runs the NFC quick-check (UAX #15) as
it decodes; only the rare documents it cannot vouch for are normalised in Python and redone.
Every Unicode table comes from Python's `unicodedata`, so both paths agree on one version.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pyarrow as pa
import xxhash

if TYPE_CHECKING:
    from datasketch import LeanMinHash

MAX_HASH = 0xFFFFFFFF  # datasketch's empty-MinHash value for the affine32 scheme
TABLE_SIZE = 0x30000  # no case mapping, combining class, decomposition or space at or above this

Texts = Sequence[str] | pa.Array | pa.ChunkedArray


def shingle_hash32(b: bytes) -> int:
    """xxh32 (seed 0) of a shingle: fast in C for datasketch users, ported to the numba path."""
    return xxhash.xxh32_intdigest(b)


def normalise(text: str) -> str:
    """NFC, simple lowercase, whitespace runs -> one space: what every shingle is cut from."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u0130", "i").replace("\u03a3", "\u03c3").lower()
    return " ".join(text.split())


def shingles(text: str, ngram: int = 5, *, char: bool = False) -> list[bytes]:
    """Word (or code-point, `char=True`) n-grams of the normalised text, UTF-8, in text order.

    A text of at most `ngram` units gives one shingle, its whole normalised text, so short
    documents still get a signature; an empty (or all-whitespace) text gives none.
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    norm = normalise(text)
    if char:
        if len(norm) <= ngram:
            return [norm.encode()] if norm else []
        return [norm[i : i + ngram].encode() for i in range(len(norm) - ngram + 1)]
    words = norm.encode().split(b" ")
    if len(words) <= ngram:
        return [norm.encode()] if norm else []
    return list(map(b" ".join, zip(*(words[k:] for k in range(ngram)), strict=False)))


@functools.cache
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 (a, b): the same RandomState draws, `a` made odd (a bijection)."""
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.flags.writeable = b.flags.writeable = False  # cached and shared
    return a, b


@functools.cache
def unicode_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytemap, lower, qc): per-code-point tables built once from Python's `unicodedata`.

    lower[cp] is the simple lowercase of cp, or -1 for `str.isspace` characters; bytemap is
    the same for ASCII bytes and -2 for bytes that start a multi-byte character; qc[cp] is
    UNSAFE where the NFC quick-check is not "Yes" (cp changes under NFC, or may compose with the
    character before it - a superset only sends more documents to Python), else cp's canonical
    combining class.
    """
    lower = np.arange(TABLE_SIZE, dtype=np.int32)
    qc = np.zeros(TABLE_SIZE, np.uint8)
    for cp in range(TABLE_SIZE):
        ch = chr(cp)
        low = ch.lower()
        lower[cp] = -1 if ch.isspace() else ord(low) if len(low) == 1 else cp
        qc[cp] = max(qc[cp], unicodedata.combining(ch))
        dec = unicodedata.decomposition(ch).split()
        if dec and not dec[0].startswith("<"):
            if unicodedata.normalize("NFC", ch) != ch:
                qc[cp] = UNSAFE
            if len(dec) == 2:
                qc[int(dec[1], 16)] = UNSAFE
    lower[0x130] = ord("i")
    qc[0x1161:0x1176] = UNSAFE  # Hangul medial vowels and final consonants compose
    qc[0x11A8:0x11C3] = UNSAFE  # algorithmically (no decomposition entry to find them by)
    bytemap = np.full(256, -2, np.int32)
    bytemap[:0x80] = lower[:0x80]
    return bytemap, lower, qc


# -- compiled kernels ---------------------------------------------------------------------------
# Numba widens integer arithmetic to 64 bits, so every uint32 product or sum is truncated back
# with U32(...) explicitly: that is the mod 2**32 wraparound (and LLVM then emits 32-bit ops).
# Hot loops index with uint64 (U64 constants only: uint64 mixed with int64 becomes float64):
# numba adds negative-index wraparound code to every signed index, which blocks load combining.
U32, U64 = np.uint32, np.uint64
P1, P2, P3, P4, P5 = (U32(p) for p in (2654435761, 2246822519, 3266489917, 668265263, 374761393))
F1, F2 = U32(0x85EBCA6B), U32(0xC2B2AE35)  # MurmurHash3 fmix32, as datasketch's _fmix(hv, 32)
UNSAFE = 255  # in the qc table: NFC quick-check "No" or "Maybe" (other values: combining class)


@numba.njit(cache=True, nogil=True, inline="always")
def _mul(x: int, y: int) -> int:
    return U32(x * y)


@numba.njit(cache=True, nogil=True, inline="always")
def _rotl(x: int, r: int) -> int:
    return U32((x << U32(r)) | (x >> U32(32 - r)))


@numba.njit(cache=True, nogil=True, inline="always")
def _read32(buf: np.ndarray, p: int) -> int:
    """Little-endian uint32 at buf[p] (p unsigned: no wraparound code, so one unaligned load)."""
    return (U32(buf[p]) | (U32(buf[p + U64(1)]) << U32(8)) | (U32(buf[p + U64(2)]) << U32(16))
            | (U32(buf[p + U64(3)]) << U32(24)))


@numba.njit(cache=True, nogil=True, inline="always")
def _lane(acc: int, word: int) -> int:
    return _mul(_rotl(U32(acc + _mul(word, P2)), 13), P1)


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def xxh32(buf: np.ndarray, i: int, end: int) -> int:
    """xxh32 with seed 0 of buf[i:end], bit-exact with `xxhash.xxh32_intdigest`."""
    i, end = U64(i), U64(end)
    n = end - i
    if n >= U64(16):
        v1, v2, v3, v4 = U32(P1 + P2), P2, U32(0), U32(0) - P1
        while i + U64(16) <= end:
            v1, v2 = _lane(v1, _read32(buf, i)), _lane(v2, _read32(buf, i + U64(4)))
            v3, v4 = _lane(v3, _read32(buf, i + U64(8))), _lane(v4, _read32(buf, i + U64(12)))
            i += U64(16)
        h = U32(U32(_rotl(v1, 1) + _rotl(v2, 7)) + U32(_rotl(v3, 12) + _rotl(v4, 18)))
    else:
        h = P5
    h = U32(h + U32(n))
    while i + U64(4) <= end:
        h = _mul(_rotl(U32(h + _mul(_read32(buf, i), P3)), 17), P4)
        i += U64(4)
    while i < end:
        h = _mul(_rotl(U32(h + _mul(U32(buf[i]), P5)), 11), P1)
        i += U64(1)
    h = _mul(h ^ (h >> U32(15)), P2)
    h = _mul(h ^ (h >> U32(13)), P3)
    return h ^ (h >> U32(16))


@numba.njit(cache=True, nogil=True, inline="always")
def _fmix32(h: int) -> int:
    h = _mul(h ^ (h >> U32(16)), F1)
    h = _mul(h ^ (h >> U32(13)), F2)
    return h ^ (h >> U32(16))


@numba.njit(cache=True, nogil=True, inline="always")
def _decode(buf: np.ndarray, i: int) -> tuple[int, int]:
    """(code point, byte width) of the multi-byte UTF-8 sequence at buf[i] (input is valid)."""
    c, c1 = np.int64(buf[i]), np.int64(buf[i + U64(1)]) & 0x3F
    if c < 0xE0:
        return ((c & 0x1F) << 6) | c1, 2
    c2 = np.int64(buf[i + U64(2)]) & 0x3F
    if c < 0xF0:
        return ((c & 0x0F) << 12) | (c1 << 6) | c2, 3
    return ((c & 0x07) << 18) | (c1 << 12) | (c2 << 6) | (np.int64(buf[i + U64(3)]) & 0x3F), 4


@numba.njit(cache=True, nogil=True, inline="always")
def _encode(out: np.ndarray, o: int, cp: int) -> int:
    """UTF-8 of a non-ASCII code point at out[o:]; returns the new end."""
    if cp < 0x800:
        out[o], out[o + U64(1)] = 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)
        return o + U64(2)
    if cp < 0x10000:
        out[o], out[o + U64(1)] = 0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F)
        out[o + U64(2)] = 0x80 | (cp & 0x3F)
        return o + U64(3)
    out[o], out[o + U64(1)] = 0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F)
    out[o + U64(2)], out[o + U64(3)] = 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)
    return o + U64(4)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _normalise_doc(buf: np.ndarray, start: int, end: int, tab: tuple, check: bool,
                   out: np.ndarray, ustart: np.ndarray, uend: np.ndarray) -> tuple[int, int]:
    """Lowercase buf[start:end] and collapse its whitespace into out: (word count, length).

    Word j is out[ustart[j]:uend[j]]. Returns (-1, 0) when `check` is on and the NFC
    quick-check fails. ASCII runs inside a word take a tight inner loop (the common case).
    """
    bytemap, lower, qc = tab
    i, end, o, n, size = U64(start), U64(end), U64(0), U64(0), lower.shape[0]
    last, in_word = 0, False  # combining class of the previous code point; inside a word?
    while i < end:
        cp = np.int64(bytemap[buf[i]])  # ASCII: lowered byte, or -1 for whitespace; else -2
        if cp >= -1:
            i, last = i + U64(1), 0
        else:
            cp, width = _decode(buf, i)
            i += U64(width)
            k = np.int64(qc[cp]) if cp < size else 0
            if check and (k == UNSAFE or (k != 0 and last > k)):
                return -1, 0
            cp, last = np.int64(lower[cp]) if cp < size else cp, k
        if cp == -1:
            in_word = False
            continue
        if not in_word:
            if n > U64(0):
                out[o], o = 32, o + U64(1)
            ustart[n], n, in_word = o, n + U64(1), True
        if cp < 0x80:
            out[o], o = cp, o + U64(1)
        else:
            o = _encode(out, o, cp)
        while i < end and bytemap[buf[i]] >= 0:
            out[o], o, i, last = bytemap[buf[i]], o + U64(1), i + U64(1), 0
        uend[n - U64(1)] = o
    return np.int64(n), np.int64(o)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _code_points(out: np.ndarray, length: int, ustart: np.ndarray, uend: np.ndarray) -> int:
    """Re-cut the normalised text out[:length] into code points (char shingles); their count."""
    n = 0
    for j in range(length):
        ustart[n] = j
        n += (out[j] & 0xC0) != 0x80
    for j in range(n - 1):
        uend[j] = ustart[j + 1]
    uend[max(n - 1, 0)] = length
    return n


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _min_affine(hashes: np.ndarray, count: int, a: np.ndarray, b: np.ndarray,
                row: np.ndarray) -> None:
    """row[k] = min_j (a[k] * hashes[j] + b[k]) mod 2**32; MAX_HASH when there are none."""
    for k in range(a.shape[0]):
        ak, bk, m = a[k], b[k], U32(MAX_HASH)
        for j in range(count):
            m = min(m, U32(_mul(ak, hashes[j]) + bk))
        row[k] = m


@numba.njit(cache=True, nogil=True, boundscheck=False)
def signature_rows(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, tab: tuple,
                   a: np.ndarray, b: np.ndarray, ngram: int, char: bool, check: bool,
                   out: np.ndarray) -> np.ndarray:
    """Fill out[d] with the signature of data[starts[d]:ends[d]]; returns the rows to redo
    after NFC (flag 1; only when `check`), whose out rows are left unset."""
    longest = 0
    for d in range(starts.shape[0]):
        longest = max(longest, ends[d] - starts[d])
    scratch = np.empty(2 * longest + 8, np.uint8)
    ustart, uend = np.empty(longest + 1, np.uint64), np.empty(longest + 1, np.uint64)
    hashes = np.empty(longest + 1, np.uint32)
    redo = np.zeros(starts.shape[0], np.uint8)
    for d in range(starts.shape[0]):
        units, length = _normalise_doc(data, starts[d], ends[d], tab, check, scratch, ustart, uend)
        if char and units > 0:
            units = _code_points(scratch, length, ustart, uend)
        if units < 0:
            redo[d] = 1
            continue
        span = min(units, ngram)
        count = units - span + 1 if units else 0
        for j in range(count):
            hashes[j] = _fmix32(xxh32(scratch, ustart[j], uend[j + span - 1]))
        _min_affine(hashes, count, a, b, out[d])
    return redo


def _as_string_array(texts: Texts) -> pa.Array:
    """One contiguous (large_)string array; a list of str is converted by pyarrow, in C."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.large_string())
    if not isinstance(texts, pa.Array):
        texts = pa.array(texts, type=pa.large_string())
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.large_string())
    return texts


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(utf8 bytes, starts, ends) read straight from the Arrow buffers; nulls become empty."""
    n, bufs = len(array), array.buffers()
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else _EMPTY
    if n == 0 or bufs[1] is None:
        return data, np.zeros(n, np.int64), np.zeros(n, np.int64)
    dtype = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(bufs[1], dtype)[array.offset : array.offset + n + 1]
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    if array.null_count:
        nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)
        ends[nulls] = starts[nulls]
    return data, starts, ends


_EMPTY = np.zeros(0, np.uint8)
_EMPTY.setflags(write=False)  # like Arrow's buffers, so the kernels compile once


def minhash_signatures(
    texts: Texts, num_perm: int = 128, seed: int = 1, ngram: int = 5, *, char: bool = False
) -> np.ndarray:
    """(n_docs, num_perm) uint32 signatures, from one compiled pass over the UTF-8 bytes.

    Empty documents (no shingles, or null) get datasketch's empty MinHash: all MAX_HASH.
    The kernel releases the GIL, so callers may shard `texts` across threads.
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    a, b = permutations(num_perm, seed)
    tab = unicode_tables()
    data, starts, ends = _buffers(_as_string_array(texts))
    out = np.empty((len(starts), num_perm), np.uint32)
    redo = np.flatnonzero(signature_rows(data, starts, ends, tab, a, b, ngram, char, True, out))
    if redo.size:  # NFC in Python, then the same kernel without the check
        raw = [bytes(data[starts[d] : ends[d]]).decode() for d in redo]
        fixed = pa.array([unicodedata.normalize("NFC", t) for t in raw], pa.large_string())
        data1, starts1, ends1 = _buffers(fixed)
        sub = np.empty((redo.size, num_perm), np.uint32)
        signature_rows(data1, starts1, ends1, tab, a, b, ngram, char, False, sub)
        out[redo] = sub
    return out


def to_lean_minhash(row: Any, seed: int = 1) -> LeanMinHash:
    """A datasketch LeanMinHash of one row, for `datasketch.MinHashLSH` (datasketch is optional)."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=seed, hashvalues=np.asarray(row, np.uint32), scheme="affine32")


def warm_up() -> None:
    """Build the tables and compile (or load from numba's cache) the kernels, e.g. before timing."""
    minhash_signatures(["warm up the kernels", "wa\u0301rm \u01d4p"], num_perm=8)
