"""Ray `worker_process_setup_hook` for tests/test_split_checkpoint.py: faults inside workers.

Every worker process of the test's Ray runs `install()` when it starts. It appends one line,
`PID ROWS`, to a log for every batch the color_filter stage scores, so the test can count what
each process scored; and the first worker to persist the Nth batch checkpoint dies with
`os._exit` right after that file lands. A marker file, created before dying, makes that happen
once: the worker Ray restarts in its place runs on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from siftline.io.storage import Storage
from siftline.stages.color_filter import ColorScore

ENV = "SIFTLINE_TEST_WORKER_FAULTS"  # JSON: {"log": PATH, "marker": PATH, "die_after": N}
CHECKPOINTS = "/_work/partial/"


def install() -> None:
    spec = json.loads(os.environ[ENV])
    _log_scored_batches(Path(spec["log"]))
    _die_after_checkpoints(Path(spec["marker"]), int(spec["die_after"]))


def _log_scored_batches(log: Path) -> None:
    original = ColorScore.__call__

    def scored(self: ColorScore, table: Any) -> pa.Table:
        out = original(self, table)
        if out.num_rows:
            with log.open("a") as handle:
                handle.write(f"{os.getpid()} {out.num_rows}\n")
        return out

    ColorScore.__call__ = scored  # type: ignore[method-assign]


def _die_after_checkpoints(marker: Path, nth: int) -> None:
    original = Storage.write_stream  # every file write goes through it
    seen = 0

    def write_stream(self: Storage, uri: str, produce: Any, durable: bool = True) -> None:
        nonlocal seen
        original(self, uri, produce, durable)
        if CHECKPOINTS in uri:
            seen += 1
            if seen == nth and not marker.exists():
                marker.touch()
                os._exit(1)

    Storage.write_stream = write_stream  # type: ignore[method-assign]
