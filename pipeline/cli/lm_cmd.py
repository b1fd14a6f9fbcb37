"""`siftline train-lm` and `siftline eval-lm`: the LM engine from the command line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from siftline.cli.common import (
    InputOpt,
    JsonOpt,
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


def train_lm_command(config: Annotated[str | None, typer.Argument(help="YAML config file.")] = None,
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
    from siftline.lm.loop import TrainProgress
    from siftline.lm.train import train_lm as run_training

    try:
        overrides = overrides_of(inputs, output, None, None, sets)
        if init:
            overrides["init"] = init
        cfg = load_config(config, overrides, model=TrainJobConfig,
                          origin=origin_of(config, bool(overrides)))
        if quiet or as_json:
            result = run_training(cfg, overwrite=overwrite, progress=TrainProgress())
        else:
            with RichTrainProgress(err) as progress:
                result = run_training(cfg, overwrite=overwrite, progress=progress)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        err.print(train_summary(result))


def eval_lm_command(
        models: Annotated[list[str], typer.Argument(help="Model folders (siftline or HF).")],
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
        fail(exc)
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        detail = (f"accuracy {r['accuracy']:.4f} (chance {r['chance']:.4f})"
                  if r["kind"] == "choice" else f"bpc {r['bpc']:.4f}")
        out.print(f"{r['model']}: {detail} on {r['n']:,} examples, score {r['score']:.4f}")
