"""Finalize's kept rows: slices of the part where that pays, always the filter's rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from helpers import rechunk

from siftline.job.finalize import RUN_ROWS, _by_domain, kept_rows


@pytest.mark.parametrize("drop_rate", [0.0, 0.01, 0.05, 0.5, 1.0])
@pytest.mark.parametrize("seed", range(3))
def test_kept_rows_are_the_filters_rows(drop_rate: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 2000
    dropped = rng.random(rows) < drop_rate
    table = pa.table({"id": [f"d{i}" for i in range(rows)],
                      "drop_reason": pa.array(np.where(dropped, "x", None), pa.string())})
    table = rechunk(table, rng.integers(0, rows, 5).tolist())
    mask = pc.is_null(table.column("drop_reason"))
    kept = kept_rows(table, mask)
    assert kept.equals(table.filter(mask))
    runs = np.count_nonzero(np.diff(np.concatenate(([0], ~dropped, [0])).astype(np.int8)) == 1)
    if 0 < runs * RUN_ROWS <= rows:  # sliced: the text is not copied
        assert kept.column("id").num_chunks >= runs


def test_counts_by_domain_follow_the_definition() -> None:
    rng = np.random.default_rng(5)
    rows = 3000
    domains = rng.choice(["web", "news", "", "bücher"], rows)
    dropped = rng.random(rows) < 0.3
    chars = rng.integers(0, 5000, rows)
    table = rechunk(pa.table({
        "domain": domains,
        "drop_reason": pa.array(np.where(dropped, "x", None), pa.string()),
        "n_chars": pa.array(chars, pa.int64()),
    }), [100, 1500, 2999])
    want: dict[str, dict[str, int]] = {}
    for domain, drop, n in zip(domains.tolist(), dropped.tolist(), chars.tolist(), strict=True):
        counts = want.setdefault(domain, {"input": 0, "kept": 0, "chars_in": 0, "chars_kept": 0})
        counts["input"] += 1
        counts["kept"] += not drop
        counts["chars_in"] += n
        counts["chars_kept"] += 0 if drop else n
    got = _by_domain(table)
    assert got == want and list(got) == sorted(want)
