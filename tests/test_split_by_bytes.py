"""Output shards: `split_by_bytes` cuts where its one-pass definition says, chunked or not."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from siftline.io.writers import split_by_bytes


def definition(sizes: list[int], target: int) -> list[list[int]]:
    """A slice ends at the first row that brings it to `target`, unless that row is last."""
    if not sizes:
        return []
    pieces, current, total = [], [], 0
    for i, size in enumerate(sizes):
        current.append(size)
        total += size
        if total >= target and i + 1 < len(sizes):
            pieces.append(current)
            current, total = [], 0
    return [*pieces, current]


@pytest.mark.parametrize("seed", range(3))
def test_slices_follow_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        sizes = [rng.choice([0, 1, 5, 10, 100]) for _ in range(rng.randint(0, 30))]
        table = pa.table({"n_bytes": pa.array(sizes, pa.int64())})
        if len(sizes) > 1 and rng.random() < 0.3:  # several chunks, as concatenated parts give
            table = pa.concat_tables([table.slice(0, len(sizes) // 2),
                                      table.slice(len(sizes) // 2)])
        target = rng.choice([0, 1, 7, 50, 1000])
        pieces = split_by_bytes(table, target, "n_bytes")
        assert [p.column("n_bytes").to_pylist() for p in pieces] == definition(sizes, target)
