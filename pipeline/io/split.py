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


def input_bytes(splits: list[Split]) -> dict[int, int]:
    """Each split's bytes of its input file, by index, for a throughput (MB/s) while a job runs:
    a byte range's length, a whole file's size; the runs of Parquet row groups cut from one
    file share its size evenly (the cuts aim at equal bytes, and no footer is read for a rate)."""
    runs: dict[str, int] = {}
    for split in splits:
        if split.format == "parquet":
            runs[split.uri] = runs.get(split.uri, 0) + 1
    sizes = {}
    for split in splits:
        if split.format == "parquet":
            sizes[split.index] = split.file_size // runs[split.uri]
        elif split.format == "jsonl" and split.compression is None:
            end = split.file_size if split.end is None else split.end
            sizes[split.index] = max(0, end - split.start)
        else:
            sizes[split.index] = split.file_size
    return sizes


@dataclass
class SplitBatch:
    table: pa.Table  # id, text, domain, source
    rejects: list[Reject]
