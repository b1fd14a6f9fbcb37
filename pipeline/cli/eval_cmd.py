"""`siftline eval-selection`: train the same small LM on each selection and on random data."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from siftline.cli.common import (
    ExecutorOpt,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    SetOpt,
    err,
    fail,
    origin_of,
    out,
    overrides_of,
)
from siftline.config import load_config
from siftline.errors import ConfigError


def eval_selection_command(config: Annotated[str | None, typer.Argument(
                       help="YAML config of the run (it runs first if not complete).")] = None,
                   output: OutputOpt = None,
                   selected: Annotated[list[str] | None, typer.Option(
                       "--selected", help="Instead of a run: a selected dataset (repeatable).")
                                       ] = None,
                   baseline: Annotated[list[str] | None, typer.Option(
                       "--baseline", help="With --selected: where random data comes from.")
                                       ] = None,
                   sets: SetOpt = None, executor: ExecutorOpt = None,
                   quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Train the same small LM on each selection and on random data; compare target loss."""
    from siftline.cli.eval_render import eval_table
    from siftline.cli.render import RichReporter, accounting_line
    from siftline.evaluation import evaluate_selection
    from siftline.io.storage import Storage
    from siftline.job.runner import run as run_job
    from siftline.lm.loop import TrainProgress
    from siftline.outputs import load_finished_manifest
    from siftline.progress import SilentReporter

    try:
        overrides = overrides_of(None, output, executor, None, sets)
        if selected or baseline:
            overrides.update({"evaluation.selected": list(selected or []),
                              "evaluation.baseline": list(baseline or [])})
        if config is None and not (selected or baseline):  # a finished run: its own config
            if not output:
                raise ConfigError("give a config file, or --output of a finished run")
            manifest = load_finished_manifest(output, Storage())
            cfg = load_config({**manifest["config"], "storage": {}}, overrides,
                              origin=origin_of(f"{output.rstrip('/')}/manifest.json", True))
        else:
            cfg = load_config(config, overrides, origin=origin_of(config, bool(overrides)))
            if not cfg.evaluation.selected:  # the run's selections: run (or resume) it first
                if quiet or as_json:
                    run_job(cfg, reporter=SilentReporter())
                else:
                    with RichReporter(err) as reporter:
                        result = run_job(cfg, reporter=reporter)
                    err.print(f"run: {result.output} ({result.status}); "
                              + accounting_line(result.stats))
        progress = TrainProgress() if quiet or as_json else _EvalProgress()
        report = evaluate_selection(cfg.output.path, cfg, progress)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(report, indent=2))
    elif not quiet:
        out.print(eval_table(report))


class _EvalProgress:
    """One line per finished training and evaluation (a run has many small trainings)."""

    def phase(self, name: str, detail: str) -> None: ...

    def start(self, total_steps: int, first_step: int, info: dict[str, Any]) -> None: ...

    def step(self, info: Any) -> None: ...

    def message(self, text: str) -> None:
        err.print(text, highlight=False)
