"""The `siftline` command: run, validate, inspect, select, train-lm, weights, mix,
eval-selection.

Flags are dotted overrides of the one config model (`siftline.config`): `--output X` is
`--set output.path=X`, and `--set` reaches every other key, so the YAML and the CLI can never
disagree about names, types or defaults.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from siftline.cli.mixture_cmd import mix_command, weights_command
from siftline.cli.stdout import stdout_to_stderr
from siftline.config import PipelineConfig, load_config, parse_set_options
from siftline.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Select the pretraining text that teaches a model the most.")
err = Console(stderr=True)
out = Console()

ConfigArg = Annotated[str, typer.Argument(help="YAML config file.")]
InputOpt = Annotated[list[str] | None, typer.Option("--input", help="Input URI (repeatable).")]
OutputOpt = Annotated[str | None, typer.Option("--output", help="Output folder or s3:// URI.")]
ExecutorOpt = Annotated[str | None, typer.Option("--executor", help="ray | local")]
AddressOpt = Annotated[str | None, typer.Option("--ray-address", help="Join a Ray cluster.")]
StagesOpt = Annotated[str | None, typer.Option("--stages", help="Run only these stages (a,b).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE config override.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bars or tables.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _overrides(inputs: list[str] | None, output: str | None, executor: str | None,
               ray_address: str | None, sets: list[str] | None) -> dict[str, Any]:
    overrides: dict[str, Any] = dict(parse_set_options(sets or []))
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


def _stages(stages: str | None) -> list[str] | None:
    """`--stages a,b` as a list (`""`: no stage at all); None when not given."""
    return None if stages is None else [s.strip() for s in stages.split(",") if s.strip()]


def _fail(exc: Exception, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
    raise typer.Exit(code)


def _load(config: str | None, overrides: dict[str, Any], stages: str | None) -> PipelineConfig:
    return load_config(config, overrides, stages=_stages(stages))


@app.command()
def run(config: ConfigArg, inputs: InputOpt = None, output: OutputOpt = None,
        executor: ExecutorOpt = None, ray_address: AddressOpt = None,
        stages: StagesOpt = None, sets: SetOpt = None,
        overwrite: Annotated[bool, typer.Option("--overwrite",
                                                help="Replace a finished or unfinished run.")
                             ] = False,
        quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Run the job (or resume it, or do nothing if it already finished)."""
    from siftline.cli.render import RichReporter, accounting_line, stats_table, timings_table
    from siftline.errors import AccountingError
    from siftline.job.runner import run as run_job
    from siftline.progress import SilentReporter

    try:
        cfg = _load(config, _overrides(inputs, output, executor, ray_address, sets), stages)
        if as_json:
            with stdout_to_stderr():
                result = run_job(cfg, overwrite=overwrite, reporter=SilentReporter())
        elif quiet:
            result = run_job(cfg, overwrite=overwrite, reporter=SilentReporter())
        else:
            with RichReporter(err) as reporter:
                result = run_job(cfg, overwrite=overwrite, reporter=reporter)
    except ConfigError as exc:
        _fail(exc)
    except AccountingError as exc:
        _fail(exc, 1)
    if as_json:
        print(json.dumps({"output": result.output, "status": result.status,
                          "stats": result.stats}, indent=2))
        return
    if not quiet:
        err.print(stats_table(result.stats))
        err.print(timings_table(result.stats))
        err.print(f"output: {result.output} ({result.status})")
        err.print(accounting_line(result.stats))
        _print_weights(result.output, cfg)


@app.command()
def validate(config: ConfigArg, inputs: InputOpt = None, output: OutputOpt = None,
             executor: ExecutorOpt = None, ray_address: AddressOpt = None,
             stages: StagesOpt = None, sets: SetOpt = None) -> None:
    """Check the config, its inputs and output, and plan the splits, without running."""
    from siftline.io.storage import Storage
    from siftline.job.plan import make_plan, preflight
    from siftline.mixture.report import check_mixture

    try:
        cfg = _load(config, _overrides(inputs, output, executor, ray_address, sets), stages)
        storage = Storage(cfg.storage.s3)
        plan = make_plan(cfg, preflight(cfg, storage), storage)
        check_mixture(cfg, storage)
    except ConfigError as exc:
        _fail(exc)
    files = {s["uri"] for s in plan["splits"]}
    out.print(f"config OK: {len(files)} input file(s), {len(plan['splits'])} split(s), "
              f"stages {cfg.stages.enabled() or 'none'}, output {cfg.output.path}")


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
        outputs_table,
        stats_table,
        timings_table,
    )
    from siftline.io.storage import Storage
    from siftline.io.writers import read_json
    from siftline.layout import Layout

    storage, layout = Storage(), Layout.for_output(output)
    if not storage.exists(layout.manifest) or not storage.exists(layout.stats):
        _fail(ConfigError(f"{output}: no finished run here (manifest.json/stats.json missing)"))
    manifest, stats = read_json(storage, layout.manifest), read_json(storage, layout.stats)
    examples = _duplicate_examples(output, manifest, storage, duplicates) if duplicates else []
    if as_json:
        print(json.dumps({"stats": stats, "manifest": manifest, "duplicates": examples},
                         indent=2))
        return
    out.print(f"status: {manifest['status']}   config sha256: {manifest['config_sha256'][:16]}")
    out.print(inputs_table(manifest))
    out.print(outputs_table(manifest))
    out.print(stats_table(stats))
    out.print(timings_table(stats))
    out.print(accounting_line(stats))
    if duplicates:
        out.print(duplicates_table(examples))


def _duplicate_examples(output: str, manifest: dict[str, Any], storage: Any,
                        limit: int) -> list[dict[str, Any]]:
    from siftline.selection.examples import duplicate_examples

    config = load_config({**manifest["config"], "storage": {}})
    try:
        return duplicate_examples(output, manifest, config, storage, limit)
    except ConfigError as exc:
        _fail(exc)
    return []


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
    from siftline.cli.render import accounting_line, stats_table
    from siftline.io.storage import Storage
    from siftline.job.reselect import reselect
    from siftline.outputs import load_finished_manifest

    try:
        # Secrets are masked in the manifest: storage comes from --config or the environment.
        storage_config = load_config(config).storage if config else None
        storage = Storage(storage_config.s3) if storage_config else Storage()
        manifest = load_finished_manifest(output, storage)
        base = {**manifest["config"], "storage": {}}
        overrides = _overrides(None, None, executor, None, sets)
        if color_tau is not None:
            overrides.update({"stages.color_filter.tau": color_tau,
                              "stages.color_filter.budget_tokens": None,
                              "stages.color_filter.budget_chars": None})
        if preselect_keep is not None:
            overrides.update({"stages.preselect.keep": preselect_keep,
                              "stages.preselect.threshold": None})
        overrides["executor.kind"] = executor or manifest.get("executor", {}).get("kind", "ray")
        cfg = load_config(base, overrides, stages=_stages(stages))
        if storage_config is not None:
            cfg.storage = storage_config
        with stdout_to_stderr(as_json):
            new_stats = reselect(output, cfg)
    except ConfigError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(new_stats, indent=2))
    elif not quiet:
        err.print(stats_table(new_stats))
        err.print(accounting_line(new_stats))


@app.command("train-lm")
def train_lm(config: Annotated[str | None, typer.Argument(help="YAML config file.")] = None,
             inputs: InputOpt = None,
             output: Annotated[str | None, typer.Option("--output",
                                                        help="Model folder.")] = None,
             init: Annotated[str | None, typer.Option(
                 "--init", help="Fine-tune this model folder (its tokenizer and config).")
                             ] = None,
             sets: SetOpt = None,
             overwrite: Annotated[bool, typer.Option(
                 "--overwrite", help="Replace a model trained with another config.")] = False,
             quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Train a small LM on a corpus sample (or fine-tune one); resumes, or does nothing if done."""
    from siftline.cli.train_render import RichTrainProgress, train_summary
    from siftline.config import TrainJobConfig
    from siftline.lm.train import TrainProgress
    from siftline.lm.train import train_lm as run_training

    try:
        overrides = _overrides(inputs, output, None, None, sets)
        if init:
            overrides["init"] = init
        cfg = load_config(config, overrides, model=TrainJobConfig)
        if quiet or as_json:
            result = run_training(cfg, overwrite=overwrite, progress=TrainProgress())
        else:
            with RichTrainProgress(err) as progress:
                result = run_training(cfg, overwrite=overwrite, progress=progress)
    except ConfigError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        err.print(train_summary(result))


app.command("weights")(weights_command)
app.command("mix")(mix_command)


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


@app.command("eval-selection")
def eval_selection(config: Annotated[str | None, typer.Argument(
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
    from siftline.lm.train import TrainProgress
    from siftline.outputs import load_finished_manifest
    from siftline.progress import SilentReporter

    try:
        overrides = _overrides(None, output, executor, None, sets)
        if selected or baseline:
            overrides.update({"evaluation.selected": list(selected or []),
                              "evaluation.baseline": list(baseline or [])})
        if config is None and not (selected or baseline):  # a finished run: its own config
            if not output:
                raise ConfigError("give a config file, or --output of a finished run")
            manifest = load_finished_manifest(output, Storage())
            cfg = load_config({**manifest["config"], "storage": {}}, overrides)
        else:
            cfg = load_config(config, overrides)
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
        _fail(exc)
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


preselect_app = typer.Typer(no_args_is_help=True, help="PreSelect: label documents with "
                            "reference models, train the fastText scorer.")
app.add_typer(preselect_app, name="preselect")


@preselect_app.command("label")
def preselect_label(config: ConfigArg, inputs: InputOpt = None, sets: SetOpt = None,
                    labels: Annotated[str | None, typer.Option(
                        "--labels", help="Labels file to write (default MODELS_DIR/labels.jsonl)")
                                      ] = None,
                    as_json: JsonOpt = False) -> None:
    """Score a labelling sample with the reference models; write predictive strength + labels."""
    from siftline.preselect.build import make_labels, reference_models

    try:
        cfg = load_config(config, _overrides(inputs, None, None, None, sets))
        reporter = _PrintReporter(quiet=as_json)
        refs, _ = reference_models(cfg, reporter)
        summary = make_labels(cfg, refs, reporter, labels)
    except ConfigError as exc:
        _fail(exc)
    summary.pop("key", None)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        err.print(f"{summary['documents']:,} documents: {summary['positives']:,} positives, "
                  f"{summary['negatives']:,} negatives -> {summary['labels']}")


@preselect_app.command("train")
def preselect_train(config: ConfigArg, sets: SetOpt = None,
                    labels: Annotated[str | None, typer.Option(
                        "--labels", help="Labels file (default MODELS_DIR/labels.jsonl)")] = None,
                    model: Annotated[str | None, typer.Option(
                        "--output", help="Classifier to write (default "
                        "MODELS_DIR/classifier.bin)")
                                     ] = None,
                    as_json: JsonOpt = False) -> None:
    """Train the fastText classifier on a labels file; report held-out precision and recall."""
    from pathlib import Path

    from siftline.io.storage import join
    from siftline.preselect.build import CLASSIFIER_FILE, LABELS_FILE, models_dir, train_classifier

    try:
        cfg = load_config(config, _overrides(None, None, None, None, sets))
        labels_path = labels or join(models_dir(cfg), LABELS_FILE)
        if not Path(labels_path).is_file():
            raise ConfigError(f"--labels: {labels_path} not found; run `siftline preselect "
                              "label` first")
        # never over a given `model` (it may be the released classifier)
        report = train_classifier(cfg, labels_path,
                                  model or join(models_dir(cfg), CLASSIFIER_FILE))
    except ConfigError as exc:
        _fail(exc)
    report.pop("key", None)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    held = report.get("heldout") or {}
    err.print(f"classifier: {report['model']} ({report['train']['n']:,} training examples)")
    if held:
        err.print(f"held out {held['n']:,}: precision {held['precision']}, recall "
                  f"{held['recall']}, accuracy {held['accuracy']}, ROC AUC {held['roc_auc']}")


@app.command("eval-lm")
def eval_lm(models: Annotated[list[str], typer.Argument(help="Model folders (siftline or HF).")],
            eval_paths: Annotated[list[str], typer.Option(
                "--eval", help="Eval JSON Lines ({query, choices, gold}) or text files.")],
            kind: Annotated[str, typer.Option("--kind", help="auto | choice | loss")] = "auto",
            max_examples: Annotated[int | None, typer.Option("--max-examples")] = 1000,
            length_norm: Annotated[bool, typer.Option(
                "--length-norm", help="Compare choices per character (acc_norm).")] = False,
            device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda")] = "auto",
            as_json: JsonOpt = False) -> None:
    """Downstream score of LMs: multiple-choice accuracy, or minus bits per character on text."""
    from pydantic import ValidationError

    from siftline.lm.config import ScoreConfig
    from siftline.preselect.config import EvalSetConfig
    from siftline.preselect.evaluate import evaluate_lm, load_eval_set

    try:
        try:
            eval_cfg = EvalSetConfig(paths=eval_paths, kind=kind, max_examples=max_examples,
                                     length_norm=length_norm)
            score_cfg = ScoreConfig(device=device)
        except ValidationError as exc:
            raise ConfigError(str(exc)) from None
        data = load_eval_set(eval_cfg)
        results = [evaluate_lm(folder, data, score_cfg, length_norm) for folder in models]
    except ConfigError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        detail = (f"accuracy {r['accuracy']:.4f} (chance {r['chance']:.4f})"
                  if r["kind"] == "choice" else f"bpc {r['bpc']:.4f}")
        out.print(f"{r['model']}: {detail} on {r['n']:,} examples, score {r['score']:.4f}")


class _PrintReporter:
    """Job-reporter hooks for the preselect commands: messages to stderr, no bars."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, done: int, total: int) -> None: ...

    def message(self, text: str) -> None:
        if not self.quiet:
            err.print(text, highlight=False, markup=False)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="siftline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
