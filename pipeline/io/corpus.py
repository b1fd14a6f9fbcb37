"""A whole corpus read the way a job reads it, outside a job: for target text and evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from siftline.config import InputConfig
from siftline.errors import ConfigError, InputError
from siftline.io.readers import check_inputs_reachable, expand_inputs, plan_splits, read_split
from siftline.io.storage import Storage

QUOTES = "'\""  # a KeyError's message comes quoted


def corpus_tables(corpus: InputConfig, storage: Storage) -> Iterator[pa.Table]:
    """The corpus as the pipeline reads it (demo:// resolved, same ids, rejects left out)."""
    from siftline.job.plan import resolve_paths  # the runner's resolution of demo:// paths

    try:
        check_inputs_reachable(corpus.paths, storage)
        files = expand_inputs(resolve_paths(corpus.paths), storage)
        splits = plan_splits(corpus, storage, files)
    except (InputError, KeyError) as exc:
        raise ConfigError(str(exc).strip(QUOTES)) from None
    for split in splits:
        for batch in read_split(split, corpus, storage):
            yield batch.table
