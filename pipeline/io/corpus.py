"""A whole corpus read the way a job reads it, outside a job: for target text and evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from siftline.config import InputConfig
from siftline.io.inputs import plan_input
from siftline.io.readers import read_split
from siftline.io.storage import Storage


def corpus_tables(corpus: InputConfig, storage: Storage) -> Iterator[pa.Table]:
    """The corpus as the pipeline reads it (demo:// resolved, same ids, rejects left out)."""
    for split in plan_input(corpus, storage):
        for batch in read_split(split, corpus, storage):
            yield batch.table
