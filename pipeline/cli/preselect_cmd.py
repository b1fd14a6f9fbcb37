"""`siftline preselect label|train`: PreSelect's labels and fastText classifier, step by step."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from siftline.cli.common import (
    ConfigArg,
    InputOpt,
    JsonOpt,
    PrintReporter,
    SetOpt,
    err,
    fail,
    origin_of,
    overrides_of,
)
from siftline.config import load_config
from siftline.errors import ConfigError

preselect_app = typer.Typer(no_args_is_help=True, help="PreSelect: label documents with "
                            "reference models, train the fastText scorer.")


@preselect_app.command("label")
def preselect_label(config: ConfigArg, inputs: InputOpt = None, sets: SetOpt = None,
                    labels: Annotated[str | None, typer.Option(
                        "--labels", help="Labels file to write (default MODELS_DIR/labels.jsonl)")
                                      ] = None,
                    as_json: JsonOpt = False) -> None:
    """Score a labelling sample with the reference models; write predictive strength + labels."""
    from siftline.preselect.build import make_labels, reference_models

    try:
        overrides = overrides_of(inputs, None, None, None, sets)
        cfg = load_config(config, overrides, origin=origin_of(config, bool(overrides)))
        reporter = PrintReporter(quiet=as_json)
        refs, _ = reference_models(cfg, reporter)
        summary = make_labels(cfg, refs, reporter, labels)
    except ConfigError as exc:
        fail(exc)
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
        overrides = overrides_of(None, None, None, None, sets)
        cfg = load_config(config, overrides, origin=origin_of(config, bool(overrides)))
        labels_path = labels or join(models_dir(cfg), LABELS_FILE)
        if not Path(labels_path).is_file():
            raise ConfigError(f"--labels: {labels_path} not found; run `siftline preselect "
                              "label` first")
        # never over a given `model` (it may be the released classifier)
        report = train_classifier(cfg, labels_path,
                                  model or join(models_dir(cfg), CLASSIFIER_FILE))
    except ConfigError as exc:
        fail(exc)
    report.pop("key", None)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    held = report.get("heldout") or {}
    err.print(f"classifier: {report['model']} ({report['train']['n']:,} training examples)")
    if held:
        err.print(f"held out {held['n']:,}: precision {held['precision']}, recall "
                  f"{held['recall']}, accuracy {held['accuracy']}, ROC AUC {held['roc_auc']}")
