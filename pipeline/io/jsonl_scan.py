"""The JSON Lines screen's one pass over a block, compiled: where each line ends, and which
lines hold something pyarrow reads otherwise than `json.loads`.

Two things are found here (the rest of the screen is cheap per line, see `jsonl_fast`):
- the numbers only pyarrow accepts, `Inf` and `-NaN` followed (after JSON whitespace) by `,`,
  `}` or `]`; a match inside a string costs only a needless fallback;
- nesting deep enough for `json.loads` to raise RecursionError: a line with `depth_limit` or
  more `{` and `[` (a bound on its depth).
Eight bytes are tested at a time (SWAR): text holds one of `\\n { [ I N` in few words, and only
those words take the one-byte step. Numpy needed four passes and a scatter for the same.

`_jsonl_scan.c` is this kernel compiled at install (when a C compiler is there); `scan_block`
uses it, which spares each process numba's start-up (~0.6 s), or else numba's (`c_kernels`).
"""

from __future__ import annotations

import numba
import numpy as np

from siftline.c_kernels import load

compiled = load("siftline.io._jsonl_scan")

U64 = np.uint64
_ONES, _HIGH = U64(0x0101010101010101), U64(0x8080808080808080)
_NEWLINE, _CASE, _BRACE = U64(0x0A0A0A0A0A0A0A0A), U64(0x2020202020202020), U64(0x7B7B7B7B7B7B7B7B)
_LETTER_I, _LETTER_N = U64(0x4949494949494949), U64(0x4E4E4E4E4E4E4E4E)
CHUNK = 32  # words per run tested at once: a newline or `{` is in ~1 run in 4 of prose


@numba.njit(cache=True, nogil=True, inline="always")
def _has(word: int, pattern: int) -> int:
    """Nonzero iff some byte of `word` equals that of `pattern` (exact when none does)."""
    v = word ^ pattern
    return (v - _ONES) & ~v & _HIGH


@numba.njit(cache=True, nogil=True, inline="always")
def _special(word: int) -> int:
    """Nonzero iff the eight bytes hold a newline, `{` or `[` (`[` | 0x20 == `{`), `I` or `N`."""
    return (_has(word, _NEWLINE) | _has(word | _CASE, _BRACE) | _has(word, _LETTER_I)
            | _has(word, _LETTER_N))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _closed_after(data: np.ndarray, j: int) -> bool:
    """After optional JSON whitespace (newlines included), a `,`, `}` or `]` at or after j."""
    n = data.shape[0]
    while j < n and (data[j] == 32 or data[j] == 9 or data[j] == 13 or data[j] == 10):
        j += 1
    return j < n and (data[j] == 44 or data[j] == 125 or data[j] == 93)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _arrow_only_number(data: np.ndarray, i: int) -> bool:
    """`Inf` at i, or `-NaN` with its `N` at i, closed as a JSON value would be."""
    n = data.shape[0]
    if i + 2 >= n:
        return False
    if data[i] == 73:
        return data[i + 1] == 110 and data[i + 2] == 102 and _closed_after(data, i + 3)
    return (i >= 1 and data[i - 1] == 45 and data[i + 1] == 97 and data[i + 2] == 78
            and _closed_after(data, i + 3))


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _step(data: np.ndarray, i: int, ends: np.ndarray, flagged: np.ndarray, state: np.ndarray,
          depth_limit: int) -> None:
    """One byte; `state` holds the lines so far, and the open brackets and `odd` of this one."""
    b = data[i]
    if b == 10:
        line = state[0]
        ends[line] = i
        flagged[line] = state[2] != 0 or state[1] >= depth_limit
        state[0] = line + 1
        state[1] = 0
        state[2] = 0
    elif b == 123 or b == 91:
        state[1] += 1
    elif (b == 73 or b == 78) and _arrow_only_number(data, i):
        state[2] = 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _scan_words(data: np.ndarray, words: np.ndarray, first_word: int, j: int, ends: np.ndarray,
                flagged: np.ndarray, state: np.ndarray, depth_limit: int) -> int:
    """Words from j on, a run of CHUNK at a time, until done or `ends` may lack room for one
    more run's lines; returns the next word. A run is tested as a whole first (a loop the
    compiler vectorises); only a run with a special byte is looked at word by word. (Growing
    `ends` in here would cost reference counting per word.)"""
    room = ends.shape[0] - 8 * CHUNK
    count = words.shape[0]
    while j < count and state[0] <= room:
        stop = min(j + CHUNK, count)
        seen = U64(0)
        for k in range(j, stop):
            seen |= _special(words[k])
        if seen:
            for k in range(j, stop):
                if _special(words[k]):
                    for i in range(first_word + 8 * k, first_word + 8 * k + 8):
                        _step(data, i, ends, flagged, state, depth_limit)
        j = stop
    return j


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _grown(values: np.ndarray) -> np.ndarray:
    out = np.empty(2 * values.shape[0], values.dtype)
    out[: values.shape[0]] = values
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def scan_lines(
    data: np.ndarray, words: np.ndarray, first_word: int, depth_limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """(ends, flagged): the offset of each line's newline (or of the block's end for a last
    line without one), and whether the line holds an `Inf`/`-NaN` or `depth_limit` brackets.

    `words` is `data[first_word:]` viewed as aligned uint64, as far as whole words go; the
    under-8 bytes before and after it take the one-byte step.
    """
    n = data.shape[0]
    ends = np.empty(n // 64 + 16 * CHUNK, np.int64)
    flagged = np.empty(ends.shape[0], np.bool_)
    state = np.zeros(3, np.int64)  # lines so far; this line's open brackets and odd number
    for i in range(first_word):
        _step(data, i, ends, flagged, state, depth_limit)
    j = 0
    while True:  # (`_scan_words` stops early only when `ends` is nearly full)
        j = _scan_words(data, words, first_word, j, ends, flagged, state, depth_limit)
        if state[0] + 8 * CHUNK + 16 > ends.shape[0]:
            ends, flagged = _grown(ends), _grown(flagged)
        elif j == words.shape[0]:
            break
    for i in range(first_word + 8 * words.shape[0], n):
        _step(data, i, ends, flagged, state, depth_limit)
    count = state[0]
    if n and data[n - 1] != 10:
        ends[count] = n
        flagged[count] = state[2] != 0 or state[1] >= depth_limit
        count += 1
    return ends[:count], flagged[:count]


def scan_block(arr: np.ndarray, depth_limit: int) -> tuple[np.ndarray, np.ndarray]:
    """`scan_lines` on a block's bytes: compiled at install if it was, else by numba."""
    if compiled is None:
        return scan_block_numba(arr, depth_limit)
    room = compiled.count_newlines(arr) + 1
    ends, flagged = np.empty(room, np.int64), np.empty(room, np.bool_)
    count = compiled.scan_lines(arr, depth_limit, ends, flagged)
    return ends[:count], flagged[:count]


def scan_block_numba(arr: np.ndarray, depth_limit: int) -> tuple[np.ndarray, np.ndarray]:
    """`scan_lines` on a block's bytes, with the aligned word view it reads."""
    head = min(-arr.ctypes.data % 8, len(arr))
    whole = (len(arr) - head) // 8
    return scan_lines(arr, arr[head : head + 8 * whole].view(np.uint64), head, depth_limit)
