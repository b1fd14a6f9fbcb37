"""MinHash signatures: equal to datasketch's, compiled path equal to the Python definition."""

from __future__ import annotations

import random
import threading
import unicodedata

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from siftline.dedupe import (
    MAX_HASH,
    minhash_signatures,
    normalise,
    shingle_hash32,
    shingles,
    to_lean_minhash,
)
from siftline.dedupe import minhash as mh

try:
    import datasketch
except ImportError:  # optional at runtime: only the head-to-head comparisons need it
    datasketch = None
needs_datasketch = pytest.mark.skipif(datasketch is None, reason="datasketch is not installed")

VOCABULARY = ("the of and to a in is that for it as was with be by on not he this are or his from"
              " at which but have an they you were her she there one all we their can has more"
              " would will data model token corpus Shard Pipeline Filter Quality score")
WORDS = tuple(VOCABULARY.split())
SPECIAL = [
    "",
    "   \n\t  ",
    "word",
    "Two words",
    "a b c d",
    "a b c d e",
    "a b c d e f",
    "  Leading,  trailing\tand\n\nmixed   WHITESPACE  ",
    "Café naïve façade — “quoted” Zürich señor",
    "Cafe\u0301 decomposed e\u0301cole vs école, A\u030a and \u212b angstrom",
    "ḍ̇ q\u0307\u0323 reordered combining marks \u0061\u0315\u0300\u05ae\u0300b",
    "東京都は日本の首都です。 北京 上海 서울특별시 \u1100\u1161\u11a8 jamo",
    "ΟΔΟΣ ΟΔΟΣ σοφός ΣΟΦΟΣ İstanbul DİYARBAKIR ǅemal ẞtraße",
    "a\u00a0b\u2003c\u3000d\u2028e\u0085f\u1680g h\u200bzero-width i\x1cj",
    "ctrl\x00nul\x07bell 👍🏽 family 👨‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001e900\U0001e922 adlam",
    "Ⱥ ⱥ Ɐ ß ǈ ǉ Ω Å K",  # case mappings that change the UTF-8 length, and singletons
]


def english_like(rng: random.Random, n_words: int) -> str:
    """Words with Zipf-ish frequencies, capitals and punctuation: text-shaped, deterministic."""
    out = []
    for i in range(n_words):
        word = WORDS[min(int(rng.paretovariate(1.2)) - 1, len(WORDS) - 1)]
        out.append(word.capitalize() if i % 11 == 0 else word)
        out.append(rng.choice((" ", " ", " ", ", ", ". ", "\n")))
    return "".join(out)


def corpus(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs = [english_like(rng, rng.randint(1, 400)) for _ in range(40)]
    docs += [english_like(rng, 6000)]  # long: ~35 KB
    return SPECIAL + docs


def datasketch_rows(texts: list[str], num_perm: int, seed: int, ngram: int = 5,
                    char: bool = False) -> np.ndarray:
    rows = []
    for text in texts:
        m = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32",
                               hashfunc=shingle_hash32)
        m.update_batch(shingles(text, ngram, char=char))
        rows.append(m.hashvalues)
    return np.array(rows, dtype=np.uint32)


def fmix32(h: int) -> int:
    h ^= h >> 16
    h = h * 0x85EBCA6B & 0xFFFFFFFF
    h ^= h >> 13
    h = h * 0xC2B2AE35 & 0xFFFFFFFF
    return h ^ (h >> 16)


def reference_row(text: str, num_perm: int, seed: int, ngram: int = 5,
                  char: bool = False) -> list[int]:
    """The definition in plain Python ints: min over shingles of a*fmix32(xxh32) + b mod 2^32."""
    a, b = mh.permutations(num_perm, seed)
    hashes = [fmix32(shingle_hash32(s)) for s in shingles(text, ngram, char=char)]
    return [min(((int(ak) * h + int(bk)) & 0xFFFFFFFF for h in hashes), default=MAX_HASH)
            for ak, bk in zip(a, b, strict=True)]


@needs_datasketch
@pytest.mark.parametrize(("num_perm", "seed"), [(64, 1), (128, 7), (256, 42)])
@pytest.mark.parametrize("char", [False, True])
def test_rows_equal_datasketch(num_perm: int, seed: int, char: bool) -> None:
    texts = corpus(seed)
    ours = minhash_signatures(texts, num_perm, seed, char=char)
    assert ours.dtype == np.uint32 and ours.shape == (len(texts), num_perm)
    np.testing.assert_array_equal(ours, datasketch_rows(texts, num_perm, seed, char=char))


@needs_datasketch
@pytest.mark.parametrize(("ngram", "char"), [(1, False), (3, False), (3, True), (9, True)])
def test_other_ngram_sizes(ngram: int, char: bool) -> None:
    texts = corpus(3)[:30]
    ours = minhash_signatures(texts, 64, 3, ngram, char=char)
    np.testing.assert_array_equal(ours, datasketch_rows(texts, 64, 3, ngram, char))


def test_compiled_equals_python_reference() -> None:
    texts = corpus(5)[:30]
    ours = minhash_signatures(texts, 32, 5)
    assert ours.tolist() == [reference_row(t, 32, 5) for t in texts]


def test_empty_documents_get_max_hash() -> None:
    rows = minhash_signatures(["", " \t\n ", "\u3000"], 16)
    assert (rows == MAX_HASH).all()  # = datasketch's empty MinHash (compared in the tests above)
    assert minhash_signatures([], 16).shape == (0, 16)


def test_short_documents_are_one_shingle() -> None:
    assert shingles("") == []
    assert shingles("One") == [b"one"]
    assert shingles("  A   short\ttext ") == [b"a short text"]
    assert shingles("a b c d e f") == [b"a b c d e", b"b c d e f"]
    assert shingles("abc", 5, char=True) == [b"abc"]
    assert shingles("Ab  cd", 3, char=True) == [b"ab ", b"b c", b" cd"]
    rows = minhash_signatures(["One", "one", "ONE "], 16)
    assert (rows == rows[0]).all() and (rows != MAX_HASH).all()


def test_normalisation() -> None:
    assert normalise("  É\u0301cole\u00a0NORMALE \n") == "\u00e9\u0301cole normale"
    assert normalise("Cafe\u0301") == normalise("CAFÉ") == "café"
    assert normalise("ΟΔΟΣ İ") == "οδοσ i"  # simple case mapping, no final-sigma rule
    rows = minhash_signatures(["Cafe\u0301 au lait", "CAFÉ  au\tLAIT", "café au lait"], 32)
    assert (rows == rows[0]).all()


def test_arrow_inputs() -> None:
    texts = corpus(1)[:25]
    expected = minhash_signatures(texts, 32)
    for array in (pa.array(texts, pa.string()), pa.array(texts, pa.large_string()),
                  pa.chunked_array([texts[:10], texts[10:]], pa.string())):
        np.testing.assert_array_equal(minhash_signatures(array, 32), expected)
    sliced = pa.array(["x", *texts, "y"], pa.string()).slice(1, len(texts))
    np.testing.assert_array_equal(minhash_signatures(sliced, 32), expected)
    with_nulls = minhash_signatures(pa.array(["a b", None, "c"], pa.string()), 32)
    assert (with_nulls[1] == MAX_HASH).all()
    np.testing.assert_array_equal(with_nulls[[0, 2]], minhash_signatures(["a b", "c"], 32))
    empty = minhash_signatures(pa.chunked_array([], pa.string()), 32)
    assert empty.shape == (0, 32)


def test_shingle_hash_is_xxh32_and_the_port_matches() -> None:
    rng = np.random.default_rng(0)
    for length in [*range(0, 70), 255, 1000]:
        data = rng.integers(0, 256, length + 8, dtype=np.uint8)
        raw = data[3 : 3 + length].tobytes()
        assert shingle_hash32(raw) == xxhash.xxh32_intdigest(raw, seed=0)
        assert int(mh.xxh32(data, 3, 3 + length)) == shingle_hash32(raw)


@needs_datasketch
def test_permutations_are_datasketchs() -> None:
    for num_perm, seed in [(1, 0), (64, 1), (128, 2**31), (256, 12345)]:
        a, b = mh.permutations(num_perm, seed)
        ref = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        np.testing.assert_array_equal(a, ref[0])
        np.testing.assert_array_equal(b, ref[1])


def test_nfc_quick_check_only_passes_normalised_text() -> None:
    """Fuzz the kernel's quick-check: whatever it lets through must already be NFC."""
    pool = ("a", "e", "A", " ", "\u0301", "\u0300", "\u0315", "\u0323", "\u05ae", "\u093c",
            "\u0928", "\u1100", "\u1161", "\u11a8", "\uac00", "\u212b", "\u2000", "\u0344",
            "\u0f73", "é", "ü", "\u0b47", "\u0b3e", "\U0001d15e", "\u30ab", "\u3099", "x")
    rng = random.Random(1)
    texts = ["".join(rng.choices(pool, k=rng.randint(1, 12))) for _ in range(3000)]
    data, starts, ends = mh._buffers(mh._as_string_array(texts))
    out = np.empty((len(texts), 8), np.uint32)
    a, b = mh.permutations(8, 1)
    redo = mh.signature_rows(data, starts, ends, mh.unicode_tables(), a, b, 5, False, True, out)
    passed = [t for t, r in zip(texts, redo, strict=True) if not r]
    assert 0 < len(passed) < len(texts)
    assert all(unicodedata.normalize("NFC", t) == t for t in passed)
    assert minhash_signatures(texts, 8, ngram=2).tolist() == [
        reference_row(t, 8, 1, 2) for t in texts]


@pytest.mark.parametrize("char", [False, True])
def test_random_code_points_from_every_plane(char: bool) -> None:
    """Fuzz decoding, case mapping and re-encoding: any code point, any whitespace."""
    rng = random.Random(11)
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]

    def any_char() -> str:
        cp = rng.choice((rng.randrange(0x80), rng.randrange(0x800), rng.randrange(0x10000),
                         rng.randrange(0x110000)))
        return rng.choice(spaces) if 0xD800 <= cp < 0xE000 else chr(cp)

    texts = ["".join(rng.choice(spaces) if rng.random() < 0.2 else any_char()
                     for _ in range(rng.randint(0, 60))) for _ in range(400)]
    ngram = 3 if char else 2
    assert minhash_signatures(texts, 16, 2, ngram, char=char).tolist() == [
        reference_row(t, 16, 2, ngram, char) for t in texts]


def test_unicode_tables_cover_every_code_point() -> None:
    """The kernels treat code points >= TABLE_SIZE as caseless, non-space, starters, NFC-stable."""
    for cp in range(mh.TABLE_SIZE, 0x110000):
        ch = chr(cp)
        if ch.lower() != ch or ch.isspace() or unicodedata.combining(ch) or (
            unicodedata.decomposition(ch)
        ):
            raise AssertionError(f"U+{cp:04X} needs a table entry")


@needs_datasketch
def test_lean_minhash_found_by_datasketch_lsh() -> None:
    rng = random.Random(9)
    base = english_like(rng, 300)
    near = base.replace(" the ", " THE ", 1) + " and one more sentence"
    other = english_like(rng, 300)
    rows = minhash_signatures([base, other], 128, 1)
    lsh = datasketch.MinHashLSH(threshold=0.8, num_perm=128)
    lsh.insert("base", to_lean_minhash(rows[0]))
    lsh.insert("other", to_lean_minhash(rows[1]))
    query = datasketch.MinHash(num_perm=128, seed=1, hashfunc=shingle_hash32)
    query.update_batch(shingles(near))
    assert lsh.query(query) == ["base"]
    assert to_lean_minhash(rows[0]).jaccard(query) > 0.8


def test_threads_release_the_gil_and_agree() -> None:
    texts = corpus(2)
    expected = minhash_signatures(texts, 64)
    results: list[np.ndarray] = [np.empty(0)] * 4

    def work(k: int) -> None:
        results[k] = minhash_signatures(texts, 64)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        np.testing.assert_array_equal(got, expected)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        minhash_signatures(["x"], ngram=0)
    with pytest.raises(ValueError):
        minhash_signatures(["x"], num_perm=0)
    with pytest.raises(ValueError):
        shingles("x", 0)
