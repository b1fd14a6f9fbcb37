"""Progress for batch jobs: plain, timestamped lines where no progress bar can be drawn.

Under Slurm, as a RayJob, in a container or with `2> run.log`, stderr is no terminal: rich
cannot animate its bars there and would print them once, at the end, so a multi-hour run would
show nothing and a hang would look like progress. There the job's reporter writes lines instead
(no ANSI codes), each starting with a UTC timestamp: one when a phase starts, one when it ends
(its duration, documents and MB/s where it counts them), and a progress line every
`SIFTLINE_PROGRESS_INTERVAL` seconds (30 by default) from a timer thread, so a line comes even
while no part finishes:

    2025-06-01T12:00:00Z read+score started: 40 parts
    2025-06-01T12:00:30Z read+score: 12/40 parts (30%), 120,514 docs, 45.2 MB/s, elapsed 30s,
      ETA 1m10s   (one line in the log)
    2025-06-01T12:01:40Z read+score done in 1m40s: 40/40 parts, 401,388 docs, 48.1 MB/s
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TextIO

from siftline.cli.common import err
from siftline.cli.render import RichReporter
from siftline.errors import ConfigError
from siftline.progress import Reporter, SilentReporter

INTERVAL_ENV = "SIFTLINE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0


def progress_interval(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds between progress lines, from SIFTLINE_PROGRESS_INTERVAL (an environment variable,
    so a job spec sets it once for every command); a bad value is a config error."""
    raw = environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{INTERVAL_ENV}={raw!r}: expected a number of seconds above 0, "
                          f"e.g. {DEFAULT_INTERVAL_S:g}")
    return value


def job_reporter(*, quiet: bool, as_json: bool, bars: bool = True
                 ) -> AbstractContextManager[Reporter]:
    """What a command's job reports to: nothing with --quiet; on a terminal stderr, today's
    bars (none with --json or without `bars`); elsewhere log lines on stderr, --json or not,
    since stdout carries only the result."""
    if quiet:
        return nullcontext(SilentReporter())
    if err.is_terminal and not err.is_dumb_terminal:
        if as_json or not bars:
            return nullcontext(SilentReporter())
        return RichReporter(err)
    return LogReporter(sys.stderr, progress_interval())


@dataclass
class _Phase:
    name: str
    total: int
    start: float
    done: int = 0
    docs: int | None = None  # None: the phase counts no documents
    nbytes: int = 0

    @property
    def unit(self) -> str:
        """A trainer's phase (`JobTrainProgress`: "train prior") counts steps, the job's parts."""
        return "steps" if self.name.startswith("train") else "parts"


class LogReporter:
    """The job's phases as timestamped lines on `stream`; a timer thread adds a progress line
    every `interval` seconds while the context is open. `clock` (monotonic) times phases and
    `wall` (epoch seconds) stamps lines: both injectable for a test's fake clock."""

    def __init__(self, stream: TextIO, interval: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.stream, self.interval, self.clock, self.wall = stream, interval, clock, wall
        self.current: _Phase | None = None
        self.last_ended: str | None = None
        self.started = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LogReporter:
        self._thread = threading.Thread(target=self._tick_forever, name="siftline-progress",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self.current is not None:  # left open: a trainer's, or one that raised
                self._end("stopped" if exc_type is not None else "done")

    # -- Reporter ----------------------------------------------------------------------------
    def phase(self, name: str, total: int) -> None:
        with self._lock:
            if self.current is not None:  # a phase nobody ended (a trainer's)
                self._end("done")
            self.current = _Phase(name, total, self.clock())
            self._write(f"{name} started: {total:,} {self.current.unit}")

    def advance(self, done: int, total: int) -> None:
        with self._lock:
            if self.current is not None:
                self.current.done, self.current.total = done, total

    def count(self, docs: int, nbytes: int = 0) -> None:
        with self._lock:
            if self.current is not None:
                self.current.docs = (self.current.docs or 0) + docs
                self.current.nbytes += nbytes

    def end(self) -> None:
        with self._lock:
            if self.current is not None:
                self._end("done")

    def message(self, text: str) -> None:
        with self._lock:
            self._write(text)

    # -- the timer's line --------------------------------------------------------------------
    def tick(self) -> None:
        """One progress line: the open phase's counts, rate and ETA, or, between phases, that
        the run is still alive."""
        with self._lock:
            now = self.clock()
            p = self.current
            if p is None:
                after = f"after {self.last_ended}" if self.last_ended else "before the first phase"
                self._write(f"working ({after}), elapsed {duration(now - self.started)}")
                return
            elapsed = now - p.start
            share = f" ({p.done / p.total:.0%})" if p.total > 0 else ""
            fields = [f"{p.done:,}/{p.total:,} {p.unit}{share}", *self._counts(p, elapsed),
                      f"elapsed {duration(elapsed)}", f"ETA {eta(p.done, p.total, elapsed)}"]
            self._write(f"{p.name}: {', '.join(fields)}")

    def _tick_forever(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def _end(self, word: str) -> None:
        p = self.current
        assert p is not None
        elapsed = self.clock() - p.start
        fields = [f"{p.done:,}/{p.total:,} {p.unit}", *self._counts(p, elapsed)]
        self._write(f"{p.name} {word} in {duration(elapsed)}: {', '.join(fields)}")
        self.current, self.last_ended = None, p.name

    @staticmethod
    def _counts(p: _Phase, elapsed: float) -> list[str]:
        counts = [] if p.docs is None else [f"{p.docs:,} docs"]
        if p.nbytes and elapsed > 0:
            counts.append(f"{p.nbytes / 1e6 / elapsed:,.1f} MB/s")
        return counts

    def _write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall()))
        self.stream.write(f"{stamp} {text}\n")
        self.stream.flush()  # a log file is block-buffered: each line goes out now


def duration(seconds: float) -> str:
    """42s, 3m05s, 2h03m: short enough for a log line, exact enough for a multi-hour run."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(done: int, total: int, elapsed: float) -> str:
    """The time left at the phase's mean pace so far; unknown before the first part ends."""
    if total <= 0 or done >= total:
        return "0s"
    if done <= 0:
        return "unknown"
    return duration(elapsed / done * (total - done))
