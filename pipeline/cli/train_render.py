"""Terminal output of `siftline train-lm`: a step bar with loss and tokens/s, and a summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from siftline.lm.loop import StepInfo, TrainProgress, TrainResult


class RichTrainProgress(TrainProgress):
    """Phase lines, then one bar over the steps; drawn on stderr so `--json` stays clean."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  "
                       "{task.fields[rate]} tok/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task: Any = None
        self.rate: float | None = None

    def __enter__(self) -> RichTrainProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, name: str, detail: str) -> None:
        self.console.print(f"[bold]{name}[/bold]: {detail}", highlight=False)

    def start(self, total_steps: int, first_step: int, info: dict[str, Any]) -> None:
        self.console.print(
            f"[bold]train[/bold]: {info['params']:,} parameters on {info['device']}, "
            f"{info['tokens_per_step']:,} tokens per step, {info['train_tokens']:,} training "
            f"and {info['val_tokens']:,} validation tokens", highlight=False)
        self.task = self.progress.add_task("train", total=total_steps, completed=first_step,
                                           loss="-", val=f"{info['val_loss']:.3f}", rate="-")

    def step(self, info: StepInfo) -> None:
        # a moving average: one step's rate is noisy on a shared CPU
        self.rate = info.tokens_per_s if self.rate is None else (
            0.9 * self.rate + 0.1 * info.tokens_per_s)
        fields: dict[str, Any] = {"loss": f"{info.loss:.3f}", "rate": f"{self.rate:,.0f}"}
        if info.val_loss is not None:
            fields["val"] = f"{info.val_loss:.3f}"
        self.progress.update(self.task, completed=info.step, **fields)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)


def train_summary(result: TrainResult) -> Table:
    table = Table(title=f"model {result.output} ({result.status})", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("parameters", f"{result.params:,}"),
        ("steps", f"{result.steps:,}"),
        ("tokens", f"{result.tokens:,} ({result.epochs:.2f} epochs)"),
        ("train loss", f"{result.train_loss:.4f}"),
        ("val loss before", f"{result.val_loss_before:.4f}"),
        ("val loss after", f"{result.val_loss_after:.4f}"),
        ("tokens/s", f"{result.tokens_per_s:,.0f} on {result.device}"),
        ("time", f"{result.time_s:,.1f} s"),
    ]
    if result.init:
        rows.insert(0, ("fine-tuned from", result.init))
    if result.resumed_from:
        rows.append(("resumed from step", f"{result.resumed_from:,}"))
    for name, value in rows:
        table.add_row(name, value)
    return table
