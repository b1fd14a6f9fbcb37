"""The `siftline` command: run, validate, inspect, select, train-lm, weights, mix,
eval-selection.

Flags are dotted overrides of the one config model (`siftline.config`): `--output X` is
`--set output.path=X`, and `--set` reaches every other key, so the YAML and the CLI can never
disagree about names, types or defaults.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from siftline.cli.common import (
    AddressOpt,
    ConfigArg,
    ExecutorOpt,
    InputOpt,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    SetOpt,
    StagesOpt,
    TargetOpt,
    err,
    fail,
    load,
    origin_of,
    out,
    overrides_of,
    stages_of,
)
from siftline.cli.config_cmd import config_command
from siftline.cli.eval_cmd import eval_selection_command
from siftline.cli.lm_cmd import eval_lm_command, train_lm_command
from siftline.cli.mixture_cmd import mix_command, weights_command
from siftline.cli.preselect_cmd import preselect_app
from siftline.cli.stdout import stdout_to_stderr
from siftline.config import PipelineConfig, load_config
from siftline.errors import ConfigError

if TYPE_CHECKING:
    from siftline.io.storage import Storage

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Select the pretraining text that teaches a model the most.")
REJECT_EXAMPLES = 5  # quarantined records `inspect` shows


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"siftline {version('siftline')}")
        raise typer.Exit()


@app.callback()
def _options(show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the installed siftline version and exit.")] = False) -> None:
    """Options before any command (`siftline --version`)."""


@app.command()
def run(config: ConfigArg, inputs: InputOpt = None, output: OutputOpt = None,
        executor: ExecutorOpt = None, ray_address: AddressOpt = None,
        stages: StagesOpt = None, targets: TargetOpt = None, sets: SetOpt = None,
        overwrite: Annotated[bool, typer.Option("--overwrite",
                                                help="Replace a finished or unfinished run.")
                             ] = False,
        quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Run the job (or resume it, or do nothing if it already finished)."""
    from siftline.cli.interrupts import resumable
    from siftline.cli.progress_log import job_reporter
    from siftline.cli.render import accounting_line, rejects_line, stats_table, timings_table
    from siftline.errors import AccountingError
    from siftline.job.runner import run as run_job

    try:
        cfg = load(config, overrides_of(inputs, output, executor, ray_address, sets, targets),
                   stages)
        # bars on a terminal, log lines elsewhere (cli/progress_log.py); stdout: the JSON alone
        with resumable(cfg.output.path), \
                job_reporter(quiet=quiet, as_json=as_json) as reporter, \
                stdout_to_stderr(as_json):
            result = run_job(cfg, overwrite=overwrite, reporter=reporter)
    except ConfigError as exc:
        fail(exc)
    except AccountingError as exc:
        fail(exc, 1)
    if as_json:
        print(json.dumps({"output": result.output, "status": result.status,
                          "stats": result.stats}, indent=2))
        return
    if not quiet:
        err.print(stats_table(result.stats))
        err.print(timings_table(result.stats))
        err.print(f"output: {result.output} ({result.status})")
        err.print(accounting_line(result.stats))
        if rejects := rejects_line(result.output, result.stats):
            err.print(rejects, markup=False, highlight=False)
        _print_weights(result.output, cfg)


@app.command()
def validate(config: ConfigArg, inputs: InputOpt = None, output: OutputOpt = None,
             executor: ExecutorOpt = None, ray_address: AddressOpt = None,
             stages: StagesOpt = None, targets: TargetOpt = None, sets: SetOpt = None) -> None:
    """Check the config, its inputs and output, and plan the splits, without running."""
    from siftline.io.storage import Storage
    from siftline.job.plan import make_plan, preflight
    from siftline.job.runner import job_executor
    from siftline.mixture.report import check_mixture
    from siftline.stages.registry import enabled_specs

    try:
        cfg = load(config, overrides_of(inputs, output, executor, ray_address, sets, targets),
                   stages)
        storage = Storage(cfg.storage.s3)
        plan = make_plan(cfg, preflight(cfg, storage), storage)
        check_mixture(cfg, storage)
    except ConfigError as exc:
        fail(exc)
    files = {s["uri"] for s in plan["splits"]}
    choice = job_executor(cfg, enabled_specs(cfg), plan)
    out.print(f"config OK: {len(files)} input file(s), {len(plan['splits'])} split(s), "
              f"stages {cfg.stages.enabled() or 'none'}, output {cfg.output.path}")
    out.print(f"executor: {choice.kind} ({choice.reason})", highlight=False, markup=False)


@app.command()
def inspect(output: Annotated[str, typer.Argument(help="A run's output folder.")],
            duplicates: Annotated[int, typer.Option(
                "--duplicates", help="Also show N example near-duplicate pairs.")] = 0,
            as_json: JsonOpt = False) -> None:
    """Summarise a finished run: inputs, outputs, records by domain, accounting."""
    from siftline.cli.render import (
        accounting_line,
        duplicates_table,
        inputs_table,
        near_dedupe_line,
        outputs_table,
        rejects_line,
        rejects_table,
        rules_table,
        stats_table,
        timings_table,
    )
    from siftline.io.storage import Storage
    from siftline.io.writers import read_json
    from siftline.layout import Layout
    from siftline.outputs import reject_examples

    storage, layout = Storage(), Layout.for_output(output)
    if not storage.exists(layout.manifest) or not storage.exists(layout.stats):
        fail(ConfigError(f"{output}: no finished run here (manifest.json/stats.json missing)"))
    manifest, stats = read_json(storage, layout.manifest), read_json(storage, layout.stats)
    examples = _duplicate_examples(output, manifest, storage, duplicates) if duplicates else []
    by_rule = _rule_examples(output, manifest, storage, stats)
    rejects = reject_examples(output, manifest, storage, REJECT_EXAMPLES)
    if as_json:
        print(json.dumps({"stats": stats, "manifest": manifest, "duplicates": examples,
                          "rule_examples": by_rule, "reject_examples": rejects}, indent=2))
        return
    out.print(f"status: {manifest['status']}   config sha256: {manifest['config_sha256'][:16]}")
    out.print(inputs_table(manifest))
    out.print(outputs_table(manifest))
    out.print(stats_table(stats))
    out.print(timings_table(stats))
    if "select_wall_time_s" in stats:
        out.print(timings_table(stats, "select_"))
    out.print(accounting_line(stats))
    if rejects:
        out.print(rejects_line(output, stats, inspect_hint=False), markup=False, highlight=False)
        out.print(rejects_table(rejects, stats["quarantined"]))
    if near := near_dedupe_line(stats):
        out.print(near)
    if stats.get("dropped_by_rule"):
        out.print(rules_table(stats, by_rule))
    if duplicates:
        out.print(duplicates_table(examples))


def _duplicate_examples(output: str, manifest: dict[str, Any], storage: Storage,
                        limit: int) -> list[dict[str, Any]]:
    from siftline.selection.examples import duplicate_examples

    config = load_config({**manifest["config"], "storage": {}})
    try:
        return duplicate_examples(output, manifest, config, storage, limit)
    except ConfigError as exc:
        fail(exc)


def _rule_examples(output: str, manifest: dict[str, Any], storage: Storage,
                   stats: dict[str, Any]) -> dict[str, dict[str, str]]:
    """One dropped document per rule (`inspect`), when the run has rule stages."""
    if not stats.get("dropped_by_rule"):
        return {}
    from siftline.selection.examples import rule_examples

    config = load_config({**manifest["config"], "storage": {}})
    try:
        return rule_examples(output, manifest, config, storage, stats)
    except ConfigError as exc:
        fail(exc)


@app.command()
def select(output: Annotated[str, typer.Argument(help="A finished run's output folder.")],
           stages: Annotated[str | None, typer.Option(
               "--stages", help="Apply only these stages' drop reasons (a,b).")] = None,
           config: Annotated[str | None, typer.Option(
               "--config", help="Config for storage credentials (else the run's own).")] = None,
           color_tau: Annotated[float | None, typer.Option(
               "--color-tau", help="CoLoR-Filter: keep the top 1/TAU by color_score.")] = None,
           preselect_keep: Annotated[float | None, typer.Option(
               "--preselect-keep", help="PreSelect: keep this share of the characters by "
               "preselect_score.")] = None,
           sets: SetOpt = None, executor: ExecutorOpt = None,
           quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Re-select from OUT/scored/ with other rules, without re-scoring."""
    from siftline.cli.interrupts import resumable
    from siftline.cli.progress_log import job_reporter
    from siftline.cli.render import accounting_line, stats_table, timings_table
    from siftline.io.storage import Storage
    from siftline.job.reselect import check_stages_ran, reselect
    from siftline.outputs import load_finished_manifest

    try:
        # Secrets are masked in the manifest: storage comes from --config or the environment.
        storage_config = load_config(config).storage if config else None
        storage = Storage(storage_config.s3) if storage_config else Storage()
        manifest = load_finished_manifest(output, storage)
        base = {**manifest["config"], "storage": {}}
        overrides = overrides_of(None, None, executor, None, sets)
        if color_tau is not None:
            overrides.update({"stages.color_filter.tau": color_tau,
                              "stages.color_filter.budget_tokens": None,
                              "stages.color_filter.budget_chars": None})
        if preselect_keep is not None:
            overrides.update({"stages.preselect.keep": preselect_keep,
                              "stages.preselect.threshold": None})
        named = stages_of(stages)
        shortcuts = [(flag, stage) for flag, stage, value in
                     (("--color-tau", "color_filter", color_tau),
                      ("--preselect-keep", "preselect", preselect_keep)) if value is not None]
        for flag, stage in shortcuts:  # a shortcut selects by its stage: it must be on
            if named is not None and stage not in named:
                raise ConfigError(f"{flag} re-selects by {stage}, which --stages leaves out")
        check_stages_ran(output, manifest, [*(named or []), *(s for _, s in shortcuts)],
                         storage)
        overrides["executor.kind"] = executor or manifest.get("executor", {}).get("kind", "ray")
        cfg = load_config(base, overrides, stages=named,
                          origin=origin_of(f"{output.rstrip('/')}/manifest.json", True))
        if storage_config is not None:
            cfg.storage = storage_config
        with resumable(output), \
                job_reporter(quiet=quiet, as_json=as_json, bars=False) as reporter, \
                stdout_to_stderr(as_json):
            new_stats = reselect(output, cfg, reporter=reporter)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(new_stats, indent=2))
    elif not quiet:
        err.print(stats_table(new_stats))
        err.print(timings_table(new_stats, "select_"))
        err.print(accounting_line(new_stats))





def _print_weights(output: str, cfg: PipelineConfig) -> None:
    """The domain weights table after a run that wrote weights.json."""
    from siftline.cli.mixture_render import warnings_text, weights_table
    from siftline.io.storage import Storage
    from siftline.io.writers import read_json
    from siftline.layout import Layout

    storage, path = Storage(cfg.storage.s3), Layout.for_output(output).weights
    if storage.exists(path):
        doc = read_json(storage, path)
        err.print(weights_table(doc))
        for line in warnings_text(doc):
            err.print(line)


app.command("config")(config_command)
app.command("train-lm")(train_lm_command)
app.command("eval-lm")(eval_lm_command)
app.command("weights")(weights_command)
app.command("mix")(mix_command)
app.command("eval-selection")(eval_selection_command)
app.add_typer(preselect_app, name="preselect")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="siftline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
