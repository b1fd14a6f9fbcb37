"""The files a shuffle goes through: map files (one batch per bucket) read back per bucket."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from siftline.io.storage import Storage
from siftline.io.writers import read_ipc_batch
from siftline.layout import Layout


@dataclass(frozen=True)
class ShuffleTask:
    layout: Layout
    storage: Storage
    parts: int
    buckets: int

    def gather(self, step: str, bucket: int) -> pa.Table:
        """Reduce input: batch `bucket` of every part's map file for `step`."""
        return pa.concat_tables(
            [read_ipc_batch(self.storage, self.layout.shuffle_map(step, p), bucket)
             for p in range(self.parts)]
        )
