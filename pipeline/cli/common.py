"""What every command shares: the consoles (tables on stdout or stderr), and how a user error
ends a command (one `error:` line, exit status 2; 1 for a run whose counts do not add up)."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from siftline.config import PipelineConfig, load_config, parse_set_options

err = Console(stderr=True)
out = Console()


def fail(exc: Exception, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
    raise typer.Exit(code)


ConfigArg = Annotated[str, typer.Argument(help="YAML config file.")]
InputOpt = Annotated[list[str] | None, typer.Option("--input", help="Input URI (repeatable).")]
OutputOpt = Annotated[str | None, typer.Option("--output", help="Output folder or s3:// URI.")]
ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", help="auto | ray | local (auto: in-process for a small job, else Ray).")]
AddressOpt = Annotated[str | None, typer.Option("--ray-address", help="Join a Ray cluster.")]
StagesOpt = Annotated[str | None, typer.Option("--stages", help="Run only these stages (a,b).")]
TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", help="CoLoR-Filter's target text: a file, glob or folder (repeatable); "
    "replaces stages.color_filter.target's paths or domain.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE config override.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bars or tables.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def overrides_of(inputs: list[str] | None, output: str | None, executor: str | None,
                 ray_address: str | None, sets: list[str] | None,
                 targets: list[str] | None = None) -> dict[str, Any]:
    overrides: dict[str, Any] = dict(parse_set_options(sets or []))
    if targets:
        overrides["stages.color_filter.target.paths"] = list(targets)
        overrides["stages.color_filter.target.domain"] = None
    if inputs:
        overrides["input.paths"] = list(inputs)
    if output:
        overrides["output.path"] = output
    if executor:
        overrides["executor.kind"] = executor
    if ray_address:
        overrides["executor.ray_address"] = ray_address
        overrides.setdefault("executor.kind", "ray")
    return overrides


def stages_of(stages: str | None) -> list[str] | None:
    """`--stages a,b` as a list (`""`: no stage at all); None when not given."""
    return None if stages is None else [s.strip() for s in stages.split(",") if s.strip()]


def origin_of(source: str | None, flags: bool) -> str:
    """What a configuration error calls its source: the file (or a run's manifest), `defaults`
    without one, and `+ command-line options` when flags changed it."""
    label = source or "defaults"
    return f"{label} + command-line options" if flags else label


def load(config: str | None, overrides: dict[str, Any], stages: str | None) -> PipelineConfig:
    return load_config(config, overrides, stages=stages_of(stages),
                       origin=origin_of(config, bool(overrides) or stages is not None))


class PrintReporter:
    """Job-reporter hooks for the preselect commands: messages to stderr, no bars."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, done: int, total: int) -> None: ...

    def count(self, docs: int, nbytes: int = 0) -> None: ...

    def end(self) -> None: ...

    def message(self, text: str) -> None:
        if not self.quiet:
            err.print(text, highlight=False, markup=False)
