"""Stage `near_dedupe`: drop near duplicates (MinHash LSH), keeping one per cluster.

Per batch, `MinHashBands` adds each document's MinHash signature (`minhash`) and LSH band keys
(`near_bands`), datasketch-compatible (see `siftline.dedupe`). After scoring, a shuffle over
every part clusters the documents that share a band key and pass `verify` (the signatures'
estimate of their Jaccard, or the exact one, against `threshold`: `siftline.dedupe.near`), and
selection drops every row that is not its cluster's representative (`dup_is_rep`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import NearDedupeConfig, PipelineConfig
from siftline.dedupe import band_keys, minhash_signatures, optimal_params
from siftline.dedupe.near import (
    BANDS_COLUMN,
    IS_REP_COLUMN,
    SIGNATURE_COLUMN,
    Verify,
    attach_dup_cluster,
    run_near_dedupe,
    save_verify,
)
from siftline.documents import as_table
from siftline.io.storage import Storage
from siftline.layout import Layout
from siftline.progress import Reporter
from siftline.stages.spec import GlobalStep, StageSpec


class MinHashBands:
    """Adds `near_bands` (and `minhash`); the global step clusters them."""

    def __init__(self, config: NearDedupeConfig) -> None:
        self.config = config
        self.bands, self.rows = band_shape(config)

    def __call__(self, table: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        table = as_table(table)
        cfg = self.config
        signatures = minhash_signatures(table.column("text"), cfg.num_perm, cfg.seed, cfg.ngram,
                                        char=cfg.char)
        keys = band_keys(signatures, self.bands, self.rows)
        table = table.append_column(BANDS_COLUMN, _fixed_list(keys, pa.uint64()))
        return table.append_column(SIGNATURE_COLUMN, _fixed_list(signatures, pa.uint32()))


def band_shape(config: NearDedupeConfig) -> tuple[int, int]:
    """(bands, rows): the configured ones, or the optimum for the threshold."""
    if config.bands is not None and config.rows is not None:
        return config.bands, config.rows
    return optimal_params(config.threshold, config.num_perm)


def _fixed_list(matrix: np.ndarray, type_: pa.DataType) -> pa.FixedSizeListArray:
    values = pa.array(np.ascontiguousarray(matrix).reshape(-1), type_)
    return pa.FixedSizeListArray.from_arrays(values, matrix.shape[1])


def _near_duplicates(table: pa.Table) -> pa.ChunkedArray | None:
    return pc.invert(table.column(IS_REP_COLUMN)) if IS_REP_COLUMN in table.column_names else None


def _build(config: PipelineConfig) -> MinHashBands:
    return MinHashBands(config.stages.near_dedupe)


def verify_of(config: NearDedupeConfig) -> Verify:
    return Verify(config.verify, config.threshold, config.ngram, config.char)


def _prepare(config: PipelineConfig, storage: Storage, reporter: Reporter,
             overwrite: bool) -> dict[str, Any]:
    """Record how candidate pairs are verified: the shuffle is given no config."""
    layout = Layout.for_output(config.output.path, config.output.work_dir)
    save_verify(layout, storage, verify_of(config.stages.near_dedupe))
    return {}


def _scratch(config: PipelineConfig) -> tuple[str, ...]:
    """Band keys only serve the shuffle; signatures are kept on request."""
    keep = config.stages.near_dedupe.keep_signatures
    return (BANDS_COLUMN,) if keep else (BANDS_COLUMN, SIGNATURE_COLUMN)


SPEC = StageSpec(
    name="near_dedupe", reason="near_duplicate", priority=20, build=_build,
    columns=(BANDS_COLUMN, SIGNATURE_COLUMN), scratch=_scratch, prepare=_prepare,
    drops=_near_duplicates,
    shuffle=GlobalStep(run=run_near_dedupe, attach=attach_dup_cluster),
)
