"""Banded LSH over MinHash signatures: band shape for a threshold, band keys, Jaccard estimates.

Two documents share a bucket in some band with probability 1 - (1 - s**rows)**bands for Jaccard
similarity s (the S-curve); `optimal_params` picks the shape the same way datasketch's
`MinHashLSH` does, so our buckets and a datasketch index built for the same threshold agree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

_MAX_NODES = 512  # beyond this the S-curve is smooth enough that more nodes change nothing
_FMIX1, _FMIX2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_BAND_SEED = np.uint64(0x9E3779B97F4A7C15)


def _candidate_shapes(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (bands, rows) with bands * rows <= num_perm, in datasketch's search order."""
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    shapes = np.array(pairs, dtype=np.float64)
    return shapes[:, 0:1], shapes[:, 1:2]


def _integrate(
    lo: float, hi: float, nodes: int, curve: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Gauss-Legendre integral over [lo, hi] of curve(s), one value per candidate shape.

    The integrands are polynomials of degree bands * rows <= num_perm, so num_perm // 2 + 1
    nodes integrate them exactly (up to rounding) - the same values scipy's `quad` converges to.
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    s = lo + (hi - lo) * (x + 1.0) / 2.0
    return (hi - lo) / 2.0 * (curve(s[None, :]) @ w)


@functools.cache
def optimal_params(
    threshold: float = 0.8, num_perm: int = 128, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising fp_weight * P(false positive) + fn_weight * P(false negative).

    P(fp) integrates the S-curve below the threshold, P(fn) its complement above it; ties go to
    the first shape in datasketch's order (fewest bands, then fewest rows).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    bands, rows = _candidate_shapes(num_perm)
    nodes = min(num_perm // 2 + 1, _MAX_NODES)
    fp = _integrate(0.0, threshold, nodes, lambda s: 1.0 - (1.0 - s**rows) ** bands)
    fn = _integrate(threshold, 1.0, nodes, lambda s: (1.0 - s**rows) ** bands)
    best = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return int(bands[best, 0]), int(rows[best, 0])


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: a bijection spreading every input bit (mod 2**64)."""
    h = (h ^ (h >> np.uint64(33))) * _FMIX1
    h = (h ^ (h >> np.uint64(33))) * _FMIX2
    return h ^ (h >> np.uint64(33))


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64 bucket keys: band i hashes signature values [i*rows, (i+1)*rows).

    Equal bands give equal keys; the band index seeds the hash, so equal values in different
    bands give different keys and all bands can share one table. Values past bands * rows are
    ignored, as in datasketch.
    """
    sig = np.asarray(signatures)
    if sig.ndim != 2:
        raise ValueError(f"signatures must be 2-D (n_docs, num_perm), got shape {sig.shape}")
    if bands < 1 or rows < 1 or bands * rows > sig.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows do not fit {sig.shape[1]} values")
    values = sig[:, : bands * rows].astype(np.uint64).reshape(len(sig), bands, rows)
    keys = np.empty((len(sig), bands), np.uint64)
    keys[:] = _fmix64(np.arange(bands, dtype=np.uint64) ^ _BAND_SEED)
    for j in range(rows):
        keys = _fmix64(keys ^ values[:, :, j])
    return keys


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal signature values: the MinHash estimate of the shingle-set Jaccard.

    Like datasketch, two empty documents (all values MAX_HASH) estimate as 1.0.
    """
    a, b = np.asarray(sig_a), np.asarray(sig_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two equal-length 1-D signatures, got {a.shape} and {b.shape}")
    return float(np.count_nonzero(a == b)) / a.size
