"""A split: one task's worth of input, and the batches it is read in.

A split is a byte range of an uncompressed JSON Lines file, a whole compressed file, a run of
Parquet row groups, or one Arrow file of a Hugging Face `save_to_disk` folder. Its index names
every output file of its part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa

from siftline.io.jsonl import Reject


@dataclass(frozen=True)
class Split:
    index: int
    uri: str
    format: str  # jsonl | parquet | arrow
    compression: str | None
    start: int  # byte offset (jsonl) or first row group (parquet); 0 for arrow
    end: int | None  # exclusive; None = to the end
    file_size: int
    fingerprint: str  # size + modification stamp, to notice inputs that changed under a run

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class SplitBatch:
    table: pa.Table  # id, text, domain, source
    rejects: list[Reject]
