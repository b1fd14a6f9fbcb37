"""Progress hooks: what the job and the trainers tell whoever is watching (the CLI draws bars,
the library stays silent). Protocols, so any object with these methods serves."""

from __future__ import annotations

from typing import Any, Protocol


class Reporter(Protocol):
    """A job's phases: `phase` starts one with a total, `advance` moves it, `count` adds the
    documents and input bytes of the parts that finished (where the phase knows them: a log
    shows a rate), and `end` closes it (a phase left open, e.g. a trainer's, ends when the
    next one starts)."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, done: int, total: int) -> None: ...

    def count(self, docs: int, nbytes: int = 0) -> None: ...

    def end(self) -> None: ...

    def message(self, text: str) -> None: ...


class SilentReporter:
    """The library's default: says nothing."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, done: int, total: int) -> None: ...

    def count(self, docs: int, nbytes: int = 0) -> None: ...

    def end(self) -> None: ...

    def message(self, text: str) -> None: ...


class JobTrainProgress:
    """A trainer's hooks (`siftline.lm.loop.TrainProgress`) drawn as the job reporter's bars."""

    def __init__(self, name: str, reporter: Reporter) -> None:
        self.name, self.reporter = name, reporter

    def phase(self, name: str, detail: str) -> None:
        self.reporter.message(f"{self.name}: {detail}")

    def start(self, total_steps: int, first_step: int, info: dict[str, Any]) -> None:
        self.reporter.phase(self.name, total_steps)
        self.reporter.advance(first_step, total_steps)

    def step(self, info: Any) -> None:
        self.reporter.advance(info.step, info.total_steps)

    def message(self, text: str) -> None:
        self.reporter.message(f"{self.name}: {text}")
