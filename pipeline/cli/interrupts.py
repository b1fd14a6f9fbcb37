"""Ctrl-C and SIGTERM during `run` or `select`: one line saying the work is kept and the same
command finishes it, instead of silence (Ctrl-C) or a dump of Ray's C++ stack (SIGTERM, which
`timeout`, Slurm and Kubernetes send), which reads as a crash.

SIGTERM is handled as Ctrl-C is: raised in the main thread as a KeyboardInterrupt, so the job
unwinds as after any error (the executor closes and shuts Ray down, finished parts' background
commits land) and every completed step stays recorded; the output is exactly-once, so the same
command resumes it. The exit status is 128 + the signal's number (130, 143), what a shell
reports for a process the signal ended. A repeated signal (`timeout` signals the process, then
its whole group) is ignored while the job unwinds.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import typer

from siftline.cli.common import err

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal that stops the job, raised where the main thread is (as Ctrl-C's is)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def resumable(output: str) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into a clean stop with the resume hint and status 128 + N."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere nothing changes
        return
    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    try:
        yield
    except KeyboardInterrupt:  # Ray's waits re-raise whatever a handler raised as this
        signum = received[0] if received else signal.SIGINT
        name = signal.Signals(signum).name
        err.print(f"interrupted ({name}): {output} keeps the work done so far; run the same "
                  "command again to resume (finished steps are not redone, nothing is written "
                  "twice)", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(128 + signum) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
