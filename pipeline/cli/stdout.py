"""Keep stdout for the JSON result: while a `--json` command works, stdout goes to stderr.

Ray forwards its workers' output to the driver's stdout (`(_Worker pid=…) …`), and a library or
C code may write to file descriptor 1; with `--json` those lines would come before the result
and break `siftline run --json | jq`. Both Python's `sys.stdout` and descriptor 1 (which the Ray
processes started during the run inherit) point at stderr until the work is done.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        fds: tuple[int, int] | None = (sys.stdout.fileno(), sys.stderr.fileno())
    except (AttributeError, io.UnsupportedOperation, ValueError):
        fds = None  # not real files (e.g. a test runner's capture): sys.stdout alone suffices
    saved = os.dup(fds[0]) if fds is not None else None
    try:
        if fds is not None:
            os.dup2(fds[1], fds[0])
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None and fds is not None:
            os.dup2(saved, fds[0])
            os.close(saved)
