"""Banded LSH: datasketch's band shapes, stable band keys, Jaccard estimates."""

from __future__ import annotations

import random

import numpy as np
import pytest

from siftline.dedupe import (
    band_keys,
    estimated_jaccard,
    minhash_signatures,
    optimal_params,
    shingles,
)

try:
    import datasketch
    from datasketch.lsh import _optimal_param
except ImportError:  # optional at runtime: only the head-to-head comparisons need it
    datasketch = None
needs_datasketch = pytest.mark.skipif(datasketch is None, reason="datasketch is not installed")

THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.5 .. 0.95


@needs_datasketch
@pytest.mark.parametrize("num_perm", [64, 128, 256])
def test_optimal_params_equal_datasketch(num_perm: int) -> None:
    for threshold in THRESHOLDS:
        assert optimal_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)
    lsh = datasketch.MinHashLSH(threshold=0.8, num_perm=num_perm)
    assert optimal_params(0.8, num_perm) == (lsh.b, lsh.r)


@needs_datasketch
@pytest.mark.parametrize(("threshold", "weights"), [(0.7, (0.3, 0.7)), (0.9, (0.8, 0.2)),
                                                     (0.3, (0.5, 0.5)), (0.99, (0.1, 0.9))])
def test_optimal_params_weighted(threshold: float, weights: tuple[float, float]) -> None:
    assert optimal_params(threshold, 128, *weights) == _optimal_param(threshold, 128, *weights)


def test_optimal_params_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        optimal_params(1.5)
    with pytest.raises(ValueError):
        optimal_params(0.8, 0)
    assert optimal_params(0.5, 1) == (1, 1)  # the only shape, as datasketch finds too


def test_band_keys_equal_exactly_for_equal_bands() -> None:
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, (4, 12), dtype=np.uint64).astype(np.uint32)
    sig[1] = sig[0]
    sig[2, :4] = sig[0, :4]  # only the first band (rows=4) shared
    sig[3, 4:8] = sig[0, 4:8]  # only the second band shared
    keys = band_keys(sig, 3, 4)
    assert keys.dtype == np.uint64 and keys.shape == (4, 3)
    assert (keys[1] == keys[0]).all()
    assert (keys[2] == keys[0]).tolist() == [True, False, False]
    assert (keys[3] == keys[0]).tolist() == [False, True, False]
    np.testing.assert_array_equal(band_keys(sig, 3, 4), keys)  # deterministic


def test_band_keys_depend_on_band_index_and_every_value() -> None:
    same = np.zeros((1, 8), np.uint32)
    keys = band_keys(same, 4, 2)
    assert len(set(keys[0].tolist())) == 4  # equal values, different bands -> different keys
    for j in range(8):
        changed = same.copy()
        changed[0, j] = 1
        diff = band_keys(changed, 4, 2)[0] != keys[0]
        assert diff.tolist() == [b == j // 2 for b in range(4)]


def fmix64(h: int) -> int:
    mask = (1 << 64) - 1
    h = (h ^ (h >> 33)) * 0xFF51AFD7ED558CCD & mask
    h = (h ^ (h >> 33)) * 0xC4CEB9FE1A85EC53 & mask
    return h ^ (h >> 33)


def test_band_keys_follow_their_definition_and_stay_stable() -> None:
    """key = fmix64 chained over the band's values from fmix64(band ^ seed); keys may be
    persisted next to shards, so the values are pinned too."""
    sig = np.arange(8, dtype=np.uint32).reshape(1, 8) * np.uint32(0x9E3779B1)
    expected = []
    for band in range(2):
        key = fmix64(band ^ 0x9E3779B97F4A7C15)
        for value in sig[0, band * 4 : band * 4 + 4].tolist():
            key = fmix64(key ^ value)
        expected.append(key)
    assert band_keys(sig, 2, 4).tolist() == [expected]
    assert expected == [6929806740750409183, 9191773372606682283]


def test_band_keys_reject_bad_shapes() -> None:
    with pytest.raises(ValueError):
        band_keys(np.zeros((2, 8), np.uint32), 3, 3)
    with pytest.raises(ValueError):
        band_keys(np.zeros(8, np.uint32), 2, 4)
    assert band_keys(np.zeros((0, 8), np.uint32), 2, 4).shape == (0, 2)


def text_pair(rng: random.Random, n: int, shared: float) -> tuple[str, str]:
    """Two texts of n distinct words with about `shared` of their word positions in common."""
    base = [f"w{rng.randrange(10**9)}" for _ in range(n)]
    other = [w if rng.random() < shared else f"x{rng.randrange(10**9)}" for w in base]
    return " ".join(base), " ".join(other)


def true_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a)), set(shingles(b))
    return len(sa & sb) / len(sa | sb)


def test_estimated_jaccard_tracks_true_jaccard() -> None:
    rng = random.Random(4)
    for shared in (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0):
        a, b = text_pair(rng, 400, shared)
        rows = minhash_signatures([a, b], 256)
        estimate = estimated_jaccard(rows[0], rows[1])
        assert abs(estimate - true_jaccard(a, b)) < 0.1, shared
        if datasketch is not None:
            lean = [datasketch.LeanMinHash(seed=1, hashvalues=r, scheme="affine32") for r in rows]
            assert estimate == lean[0].jaccard(lean[1])


def test_estimated_jaccard_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        estimated_jaccard(np.zeros(4, np.uint32), np.zeros(5, np.uint32))
    assert estimated_jaccard(np.arange(4), np.array([0, 1, 9, 9])) == 0.5


def test_near_duplicates_share_a_bucket() -> None:
    rng = random.Random(8)
    pairs = [text_pair(rng, 300, 0.995) for _ in range(10)] + [text_pair(rng, 300, 0.3)]
    texts = [t for pair in pairs for t in pair]
    bands, rows = optimal_params(0.8, 128)
    keys = band_keys(minhash_signatures(texts, 128), bands, rows)
    shares = [(keys[i] == keys[i + 1]).any() for i in range(0, len(texts), 2)]
    assert shares == [True] * 10 + [False]
