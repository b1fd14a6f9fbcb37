"""Child process for tests/test_resume.py: run one siftline job, optionally SIGKILLing itself.

    python crash_run.py CONFIG_JSON [DIE_AT]

CONFIG_JSON is the job's config as a JSON object (relative paths resolve against the working
directory the test starts this process in). Without DIE_AT the job simply runs; the test then
kills it from outside when a file it polls for appears.

DIE_AT makes the process kill itself with SIGKILL at one exact point, for windows too short to
hit by polling. It is WHEN:GLOB:N, GLOB matched (fnmatch, `*` crosses `/`) against the path as
the pipeline spells it:

    before:GLOB:N   the Nth file write whose path matches GLOB is about to start
    during:GLOB:N   halfway through that write: half the bytes are in its temp file
    after:GLOB:N    that file has just landed under its final name (finalize's files: at their
                    commit, which may run on its background thread, pipeline/job/commits.py)
    delete:GLOB:N   the Nth delete of a matching path is about to start

Nothing here changes what the pipeline writes; it only decides when the process dies.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any

from siftline.config import load_config
from siftline.io.storage import PendingFile, Storage
from siftline.job.runner import run


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_point(die_at: str) -> None:
    when, rest = die_at.split(":", 1)
    pattern, nth = rest.rsplit(":", 1)
    seen = 0

    def hit(uri: str) -> bool:
        nonlocal seen
        if fnmatch.fnmatch(uri, pattern):
            seen += 1
            return seen == int(nth)
        return False

    if when == "delete":
        original_delete = Storage.delete

        def delete(self: Storage, uri: str, recursive: bool = False) -> None:
            if hit(uri):
                _die()
            original_delete(self, uri, recursive)

        Storage.delete = delete  # type: ignore[method-assign]
        return
    if when not in ("before", "during", "after"):
        raise SystemExit(f"unknown kill point {die_at!r}")
    original_write = Storage.write_stream  # every file write goes through it

    def write_stream(self: Storage, uri: str, produce: Callable[[IO[bytes]], Any],
                     durable: bool = True) -> None:
        if not hit(uri):
            original_write(self, uri, produce, durable)
            return
        if when == "before":
            _die()
        if when == "during":
            whole = io.BytesIO()
            produce(whole)
            data = whole.getvalue()
            with self.atomic_write(uri) as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
                _die()
        original_write(self, uri, produce, durable)
        _die()

    Storage.write_stream = write_stream  # type: ignore[method-assign]
    original_pending = Storage.write_pending  # finalize's files, named at their commit

    def write_pending(self: Storage, uri: str, data: bytes) -> PendingFile | None:
        if not hit(uri):
            return original_pending(self, uri, data)
        if when == "before":
            _die()
        if when == "during":
            original_pending(self, uri, data[: len(data) // 2])
            _die()
        written = original_pending(self, uri, data)
        return None if written is None else _DieAfterCommit(written.tmp, written.uri)

    Storage.write_pending = write_pending  # type: ignore[method-assign]


class _DieAfterCommit(PendingFile):
    """`after:` for a file written pending: it lands under its final name at its commit."""

    def commit(self) -> None:
        super().commit()
        _die()


def main(argv: list[str]) -> int:
    config = load_config(json.loads(argv[1]))
    if len(argv) > 2:
        install_kill_point(argv[2])
    result = run(config)
    print(result.status, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
