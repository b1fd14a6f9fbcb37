"""Near-duplicate detection: MinHash signatures of n-gram shingles and banded LSH keys.

Signatures equal `datasketch.MinHash(scheme="affine32", hashfunc=shingle_hash32)`, so they can be
mixed with datasketch sketches and indexes (`to_lean_minhash`).
"""

from siftline.dedupe.lsh import band_keys, estimated_jaccard, optimal_params
from siftline.dedupe.minhash import (
    MAX_HASH,
    minhash_signatures,
    normalise,
    shingle_hash32,
    shingles,
    to_lean_minhash,
)

__all__ = [
    "MAX_HASH",
    "band_keys",
    "estimated_jaccard",
    "minhash_signatures",
    "normalise",
    "optimal_params",
    "shingle_hash32",
    "shingles",
    "to_lean_minhash",
]
